namespace Flows.Tensors.Backend.Cuda

open System
open System.IO
open System.Runtime.InteropServices

/// One native library of the CUDA stack and the file names it goes by, newest first.
type internal NativeLibrarySpec =
    { /// What it is, for error messages ("the CUDA driver").
      Description: string
      /// File names to try in order.
      Names: string list }

/// Finding the CUDA libraries at run time. Nothing is loaded until a CUDA device is asked for, so a
/// machine without CUDA builds and runs everything else.
[<RequireQualifiedAccess>]
module internal NativeLibraries =

    /// The driver API: installed with the NVIDIA driver, never by the toolkit.
    let driver = { Description = "the CUDA driver"; Names = [ "libcuda.so.1"; "libcuda.so" ] }

    /// The runtime compiler for our kernels, CUDA 13, 12 and 11 (libnvrtc.so.11.2 serves every 11.x since 11.2).
    let nvrtc = { Description = "NVRTC"; Names = [ "libnvrtc.so.13"; "libnvrtc.so.12"; "libnvrtc.so.11.2"; "libnvrtc.so" ] }

    /// cuBLAS for GEMM (it loads libcublasLt.so.N beside itself).
    let cublas = { Description = "cuBLAS"; Names = [ "libcublas.so.13"; "libcublas.so.12"; "libcublas.so.11"; "libcublas.so" ] }

    /// FLOWS_CUDA_PATH's folders (':'-separated): searched before anything else, so a chosen CUDA
    /// (or the emulator of tests/CudaEmulator) wins over one on the loader's path.
    let chosenFolders (environment: string -> string) : string list =
        match environment "FLOWS_CUDA_PATH" with
        | null | "" -> []
        | v -> v.Split(':', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray

    /// Folders searched after the loader's own path: the toolkit's lib64 and the NVIDIA pip
    /// wheels' lib folders under a Python environment.
    let searchFolders (environment: string -> string) : string list =
        let wheels =
            match environment "VIRTUAL_ENV" with
            | null | "" -> []
            | venv ->
                let site = Path.Combine(venv, "lib")
                if Directory.Exists site then
                    Directory.GetDirectories(site, "python3*")
                    |> Array.sort
                    |> Array.collect (fun py ->
                        [| for part in [ "cuda_nvrtc"; "cublas"; "cuda_runtime"; "cu13"; "cu12" ] ->
                               Path.Combine(py, "site-packages", "nvidia", part, "lib") |])
                    |> List.ofArray
                else []
        [ "/usr/local/cuda/lib64"; "/usr/lib/x86_64-linux-gnu" ] @ wheels

    /// Every path tried, in order: each name in each chosen folder, then each name through the
    /// loader's search path followed by the same name in each of `folders`.
    let candidates (spec: NativeLibrarySpec) (chosen: string list) (folders: string list) : string list =
        [ for folder in chosen do
              for name in spec.Names -> Path.Combine(folder, name)
          for name in spec.Names do
              yield name
              for folder in folders -> Path.Combine(folder, name) ]

    /// The first candidate that loads (via `tryLoad`), or the message naming what is missing and what was tried.
    let find (tryLoad: string -> nativeint option) (spec: NativeLibrarySpec) (chosen: string list) (folders: string list) : Result<nativeint * string, string> =
        let tried = candidates spec chosen folders
        match tried |> List.tryPick (fun path -> tryLoad path |> Option.map (fun h -> h, path)) with
        | Some found -> Ok found
        | None ->
            Error(
                $"""CUDA is not available: could not load {spec.Description} (tried {String.Join(", ", spec.Names)} on the loader path"""
                + $""" and in {String.Join(", ", chosen @ folders)}). Install it, or set FLOWS_CUDA_PATH to the folder holding it."""
            )

    /// Loads through NativeLibrary.TryLoad.
    let tryLoad (path: string) : nativeint option =
        match NativeLibrary.TryLoad path with
        | true, handle -> Some handle
        | _ -> None

    /// Loads a library of the CUDA stack from the process's environment, or fails with the clear message.
    let load (spec: NativeLibrarySpec) : nativeint =
        match find tryLoad spec (chosenFolders Environment.GetEnvironmentVariable) (searchFolders Environment.GetEnvironmentVariable) with
        | Ok(handle, _) -> handle
        | Error message -> raise (InvalidOperationException message)
