namespace Flows.Tensors.Backend.Cuda

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Runtime.InteropServices

/// Compiling kernel sources to cubins with NVRTC, cached on disk. SASS (a cubin), not PTX: the
/// driver refuses PTX newer than itself, and a cubin needs no JIT at load.
[<RequireQualifiedAccess>]
module internal KernelCache =

    /// NVRTC options for a target architecture such as "sm_90".
    let options (architecture: string) = [ $"--gpu-architecture={architecture}"; "--std=c++14" ]

    /// The architecture to compile for: the newest one NVRTC supports that the device runs
    /// (same major version, minor at most the device's), as "sm_XY". Capabilities are 10·major + minor.
    let pickArchitecture (supported: int[]) (device: int) : Result<string, string> =
        match supported |> Array.filter (fun a -> a / 10 = device / 10 && a <= device) with
        | [||] ->
            let list = String.Join(", ", supported |> Array.map (fun a -> $"sm_{a}"))
            Error $"this NVRTC cannot compile for compute capability {device / 10}.{device % 10} (it supports {list}); install a newer CUDA toolkit's NVRTC"
        | fits -> Ok $"sm_{Array.max fits}"

    /// SHA-256 (hex) of the source, options, architecture and NVRTC version, each length-prefixed
    /// so that no two different inputs run together into the same bytes.
    let key (source: string) (options: string list) (architecture: string) (nvrtcVersion: string) : string =
        let text = StringBuilder()
        for part in [ source; String.Join("\n", options); architecture; nvrtcVersion ] do
            text.Append(part.Length).Append(':').Append(part).Append(';') |> ignore
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))).ToLowerInvariant()

    /// The cache folder: FLOWS_CUBIN_CACHE, else $XDG_CACHE_HOME/flows/cubin, else ~/.cache/flows/cubin.
    let folder (environment: string -> string) : string =
        match environment "FLOWS_CUBIN_CACHE", environment "XDG_CACHE_HOME" with
        | dir, _ when not (String.IsNullOrEmpty dir) -> dir
        | _, xdg when not (String.IsNullOrEmpty xdg) -> Path.Combine(xdg, "flows", "cubin")
        | _ -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache", "flows", "cubin")

    /// Writes through a temporary file in the same folder and a rename, so a reader never sees half a file.
    let writeAtomically (path: string) (bytes: byte[]) =
        Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
        let temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp"
        File.WriteAllBytes(temp, bytes)
        File.Move(temp, path, true)

    // stored as SHA-256(cubin) + cubin: a truncated or corrupt file is recompiled, not loaded
    let private pack (cubin: byte[]) = Array.append (SHA256.HashData cubin) cubin

    let private unpack (stored: byte[]) =
        if stored.Length <= 32 then None
        else
            let cubin = stored[32..]
            if SHA256.HashData(cubin).AsSpan().SequenceEqual(ReadOnlySpan(stored, 0, 32)) then Some cubin else None

    /// Compiles one source with NVRTC: the cubin, or NVRTC's log with the source name on failure.
    let compile (nvrtc: NvrtcApi) (source: KernelSource) (options: string list) : Result<byte[], string> =
        let mutable program = 0n
        let created = nvrtc.CreateProgram.Invoke(&program, source.Text, source.Name, 0, 0n, 0n)
        if created <> 0 then Error $"nvrtcCreateProgram failed for {source.Name} with code {created}"
        else
            let pointers = options |> List.map Marshal.StringToCoTaskMemUTF8 |> Array.ofList
            let array = Marshal.AllocHGlobal(IntPtr.Size * max pointers.Length 1)
            try
                pointers |> Array.iteri (fun i p -> Marshal.WriteIntPtr(array, i * IntPtr.Size, p))
                let compiled = nvrtc.CompileProgram.Invoke(program, pointers.Length, array)
                let readBytes (size: NvrtcSize) (get: NvrtcBytes) =
                    let mutable n = 0un
                    size.Invoke(program, &n) |> ignore
                    let buffer = Marshal.AllocHGlobal(nativeint n + 1n)
                    try
                        get.Invoke(program, buffer) |> ignore
                        let bytes = Array.zeroCreate<byte> (int n)
                        Marshal.Copy(buffer, bytes, 0, bytes.Length)
                        bytes
                    finally
                        Marshal.FreeHGlobal buffer
                if compiled <> 0 then
                    let log = Encoding.UTF8.GetString(readBytes nvrtc.GetProgramLogSize nvrtc.GetProgramLog).TrimEnd('\000')
                    let optionText = String.Join(" ", options)
                    Error $"NVRTC could not compile {source.Name} ({optionText}), code {compiled}:\n{log}"
                else Ok(readBytes nvrtc.GetCubinSize nvrtc.GetCubin)
            finally
                pointers |> Array.iter Marshal.FreeCoTaskMem
                Marshal.FreeHGlobal array
                nvrtc.DestroyProgram.Invoke(&program) |> ignore

    /// The cubin for a source: from the cache folder when a valid one is there, else compiled and stored.
    let load (nvrtc: NvrtcApi) (cacheFolder: string) (source: KernelSource) (architecture: string) : byte[] =
        let opts = options architecture
        let path = Path.Combine(cacheFolder, key source.Text opts architecture nvrtc.VersionText + ".cubin")
        let cached = if File.Exists path then unpack (File.ReadAllBytes path) else None
        match cached with
        | Some cubin -> cubin
        | None ->
            match compile nvrtc source opts with
            | Ok cubin ->
                // a read-only or full cache folder only costs the next start a compile
                try writeAtomically path (pack cubin) with :? IOException | :? UnauthorizedAccessException -> ()
                cubin
            | Error message -> invalidOp message
