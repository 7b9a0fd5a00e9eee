/// Replacing a folder in one step. On Linux `renameat2(RENAME_EXCHANGE)` swaps a complete staging
/// folder with the existing one atomically: at every instant the path holds the old folder or the
/// new one. Elsewhere (or on a file system without exchange) the old folder is first renamed to a
/// `.old-*` sibling, which `recover` finds if a crash leaves the path missing.
module internal Flows.Io.AtomicFolder

open System
open System.IO
open System.Runtime.InteropServices

module private Native =
    [<DllImport("libc", SetLastError = true)>]
    extern int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint32 flags)

    [<DllImport("libc", SetLastError = true)>]
    extern int ``open``(string path, int flags)

    [<DllImport("libc", SetLastError = true)>]
    extern int openat(int dirfd, string path, int flags)

    [<DllImport("libc", SetLastError = true)>]
    extern int fsync(int fd)

    [<DllImport("libc", SetLastError = true)>]
    extern int close(int fd)

let private atCwd = -100
let private noReplace = 1u
let private exchange = 2u
let private enoent, eexist, einval, enotempty, enosys = 2, 17, 22, 39, 38

// false once renameat2 proved unusable here (another OS, an old libc or kernel, a file system
// without it); FLOWS_RENAME_EXCHANGE=0 forces the portable protocol (for file systems that
// misreport exchange, and to test that protocol on Linux)
let mutable private exchangeWorks = OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable "FLOWS_RENAME_EXCHANGE" <> "0"

/// The infix of the names of folders a save moves an old model to when it cannot swap.
let oldInfix = ".old-"

/// Forces the data of a folder's entries (its names) to disk; best effort where there is no fsync.
let syncFolder (path: string) =
    if OperatingSystem.IsLinux() then
        try
            let fd = Native.``open`` (path, 0)
            if fd >= 0 then
                Native.fsync fd |> ignore
                Native.close fd |> ignore
        with :? DllNotFoundException | :? EntryPointNotFoundException -> ()

/// Writes `bytes` to a new file and forces them to disk before returning.
let writeDurably (path: string) (bytes: byte[]) =
    use stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None)
    stream.Write(bytes, 0, bytes.Length)
    stream.Flush true

let private fail (what: string) (errno: int) =
    raise (IOException $"{what}: {Marshal.GetPInvokeErrorMessage errno} (errno {errno})")

// renames old → new with renameat2 flags; Ok, or the errno
let private renameAt2 (source: string) (target: string) (flags: uint32) =
    try
        if Native.renameat2 (atCwd, source, atCwd, target, flags) = 0 then Ok()
        else Error(Marshal.GetLastPInvokeError())
    with :? DllNotFoundException | :? EntryPointNotFoundException -> Error enosys

// the swap through a second name: target → target.old-*, staging → target
let private replaceByMoves (staging: string) (target: string) =
    let rec attempt tries =
        try
            if Directory.Exists target then
                let old = $"{target}{oldInfix}{Guid.NewGuid():N}"
                Directory.Move(target, old)
                Directory.Move(staging, target)
                Some old
            else
                Directory.Move(staging, target)
                None
        // another save moved a folder in between: try again with what is there now
        with :? IOException when tries > 0 -> attempt (tries - 1)
    attempt 16

/// What reading a folder's files as one version found.
[<RequireQualifiedAccess>]
type Together =
    | Read of contents: byte[][]
    | Missing of name: string
    | TooLarge of name: string * length: int64

let private oCloexec = 0x80000

// the whole file behind a handle, or its length when that exceeds `limit`
let private readHandle (handle: Microsoft.Win32.SafeHandles.SafeFileHandle) (limit: int64) =
    let length = RandomAccess.GetLength handle
    if length > limit then Error length
    else
        let bytes = Array.zeroCreate<byte> (int length)
        let mutable at = 0
        let mutable more = true
        while more && at < bytes.Length do
            let n = RandomAccess.Read(handle, Span(bytes, at, bytes.Length - at), int64 at)
            if n = 0 then more <- false else at <- at + n
        Ok(if at = bytes.Length then bytes else Array.sub bytes 0 at)

/// Reads the files `files` (name, most bytes allowed) of `folder` as one version of it. On Linux
/// the files are opened through a handle on the folder itself: a save that swaps another folder in
/// meanwhile cannot mix versions (the handle keeps the folder that was there; a file missing from
/// it means that folder was deleted after the swap, and the caller reads again).
let readTogether (folder: string) (files: (string * int64) list) : Together =
    let viaFolderHandle =
        if not (OperatingSystem.IsLinux()) then None
        else
            try
                let dirFd = Native.``open`` (folder, oCloexec)
                if dirFd < 0 then Some(Together.Missing "")
                else
                    try
                        let rec go (read: byte[] list) files =
                            match files with
                            | [] -> Together.Read(Array.ofList (List.rev read))
                            | (name: string, limit) :: rest ->
                                let fd = Native.openat (dirFd, name, oCloexec)
                                if fd < 0 then Together.Missing name
                                else
                                    use handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(nativeint fd, true)
                                    match readHandle handle limit with
                                    | Ok bytes -> go (bytes :: read) rest
                                    | Error length -> Together.TooLarge(name, length)
                        Some(go [] files)
                    finally Native.close dirFd |> ignore
            with :? DllNotFoundException | :? EntryPointNotFoundException -> None
    match viaFolderHandle with
    | Some outcome -> outcome
    | None ->
        let rec go (read: byte[] list) files =
            match files with
            | [] -> Together.Read(Array.ofList (List.rev read))
            | (name: string, limit) :: rest ->
                let path = Path.Combine(folder, name)
                if not (File.Exists path) then Together.Missing name
                else
                    try
                        use handle = File.OpenHandle path
                        match readHandle handle limit with
                        | Ok bytes -> go (bytes :: read) rest
                        | Error length -> Together.TooLarge(name, length)
                    with :? FileNotFoundException | :? DirectoryNotFoundException -> Together.Missing name
        go [] files

/// The infix of staging folders' names: `target.tmp-<process id>-<unique>`.
let stagingInfix = ".tmp-"

/// A fresh staging folder name beside `target`, naming this process.
let stagingFor (target: string) = $"{target}{stagingInfix}{Environment.ProcessId}-{Guid.NewGuid():N}"

// a staging folder whose process is gone and that nobody wrote to for this long is a killed save's
let private staleAfter = TimeSpan.FromMinutes 10.0

let private alive (pid: int) =
    try
        use p = Diagnostics.Process.GetProcessById pid
        not p.HasExited
    with :? ArgumentException | :? InvalidOperationException -> false

let private remove (folder: string) =
    try Directory.Delete(folder, true) with :? IOException | :? UnauthorizedAccessException -> ()

/// Deletes what killed saves left beside `target`: staging folders whose process is no longer
/// running, and (once `target` exists again) `.old-*` folders of the portable protocol, each
/// last written `staleAfter` ago (a save in flight may still need a younger one). Best effort:
/// a folder another process removes first, or that cannot be removed, is left.
let removeStale (target: string) =
    match Path.GetDirectoryName target with
    | null -> ()
    | parent ->
        let stale (folder: string) = DateTime.UtcNow - Directory.GetLastWriteTimeUtc folder > staleAfter
        if Directory.Exists target then
            for folder in Directory.EnumerateDirectories(parent, Path.GetFileName target + oldInfix + "*") do
                if stale folder then remove folder
        let prefix = Path.GetFileName target + stagingInfix
        for folder in Directory.EnumerateDirectories(parent, prefix + "*") do
            let name = Path.GetFileName folder
            let owner = name.Substring(prefix.Length).Split('-')[0]
            match Int32.TryParse owner with
            | true, pid when not (alive pid) && stale folder -> remove folder
            | _ -> ()

/// Puts the complete folder `staging` at `target` in one step and returns where the previous
/// folder now is (for the caller to delete), or None when there was none.
let replace (staging: string) (target: string) : string option =
    let rec swap tries =
        match renameAt2 staging target exchange with
        | Ok() -> Some staging
        | Error e when e = enoent && Directory.Exists staging ->
            // no folder at the target yet: take the name unless another save just did
            match renameAt2 staging target noReplace with
            | Ok() -> None
            | Error e when (e = eexist || e = enotempty) && tries > 0 -> swap (tries - 1)
            | Error e when e = einval || e = enosys ->
                exchangeWorks <- false
                replaceByMoves staging target
            | Error e -> fail $"cannot rename '{staging}' to '{target}'" e
        | Error e when e = einval || e = enosys ->
            exchangeWorks <- false
            replaceByMoves staging target
        | Error e -> fail $"cannot exchange '{staging}' with '{target}'" e
    let result = if exchangeWorks then swap 16 else replaceByMoves staging target
    match Path.GetDirectoryName target with
    | null -> ()
    | parent -> syncFolder parent
    result

/// Where a model whose folder `target` is missing survives after a save was killed between the
/// two moves of `replaceByMoves`: the newest `.old-*` sibling for which `complete` holds.
let recover (complete: string -> bool) (target: string) : string option =
    match Path.GetDirectoryName target with
    | null -> None
    | parent when not (Directory.Exists parent) -> None
    | parent ->
        Directory.EnumerateDirectories(parent, Path.GetFileName target + oldInfix + "*")
        |> Seq.filter complete
        |> Seq.sortByDescending Directory.GetLastWriteTimeUtc
        |> Seq.tryHead
