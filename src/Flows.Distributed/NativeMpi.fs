/// OpenMPI's C API, bound at run time. OpenMPI's handles are the addresses of exported globals
/// (`ompi_mpi_comm_world`, `ompi_mpi_double`, …), so they come from the library's exports too. The
/// library is opened with RTLD_GLOBAL: OpenMPI's own plugins resolve their symbols against it.
module internal Flows.Distributed.NativeMpi

open System
open System.Runtime.InteropServices

[<DllImport("libc", EntryPoint = "dlopen")>]
extern nativeint private dlopen(string file, int mode)

[<DllImport("libc", EntryPoint = "dlerror")>]
extern nativeint private dlerror()

let private RTLD_NOW = 2
let private RTLD_GLOBAL = 0x100

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type InitThread = delegate of nativeint * nativeint * int * byref<int> -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Flag = delegate of byref<int> -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type CommQuery = delegate of nativeint * byref<int> -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Allreduce = delegate of nativeint * nativeint * int * nativeint * nativeint * nativeint -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Bcast = delegate of nativeint * int * nativeint * int * nativeint -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type CommCall = delegate of nativeint -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Abort = delegate of nativeint * int -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type NoArguments = delegate of unit -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type Query = delegate of unit -> int

/// The entry points and handles this project uses.
type Api =
    { Library: string
      InitThread: InitThread
      Initialized: Flag
      Finalized: Flag
      CommRank: CommQuery
      CommSize: CommQuery
      Allreduce: Allreduce
      Bcast: Bcast
      Barrier: CommCall
      Abort: Abort
      Finalize: NoArguments
      /// OpenMPI's MPIX_Query_cuda_support (its CUDA extension), where the library exports it.
      QueryCudaSupport: Query option
      World: nativeint
      Float: nativeint
      Double: nativeint
      Sum: nativeint }

/// OpenMPI's MPI_IN_PLACE.
let inPlace = nativeint 1

/// MPI_THREAD_SERIALIZED: any thread may call, one at a time (FitAsync trains on a worker thread).
let threadSerialized = 2

/// Where the library is looked for: FLOWS_MPI_LIBRARY first, then OpenMPI's sonames.
let private candidates () =
    [ match Environment.GetEnvironmentVariable "FLOWS_MPI_LIBRARY" with
      | null | "" -> ()
      | path -> path
      "libmpi.so.40"
      "libmpi.so" ]

let private delegateFor<'d when 'd :> Delegate> (address: nativeint) = Marshal.GetDelegateForFunctionPointer<'d> address

let private load () : Api =
    let tried = Collections.Generic.List<string>()
    let opened =
        candidates ()
        |> List.tryPick (fun name ->
            let handle = dlopen (name, RTLD_NOW ||| RTLD_GLOBAL)
            if handle <> 0n then Some(handle, name)
            else
                let reason = dlerror ()
                tried.Add(if reason = 0n then name else Marshal.PtrToStringAnsi reason)
                None)
    match opened with
    | None ->
        raise (
            DllNotFoundException(
                "OpenMPI's libmpi was not found (tried: " + String.Join("; ", tried)
                + "). Install it with `apt-get install -y openmpi-bin libopenmpi3` (as root; otherwise prefix sudo), "
                + "or name the library in FLOWS_MPI_LIBRARY."
            )
        )
    | Some(handle, name) ->
        let export (symbol: string) =
            match NativeLibrary.TryGetExport(handle, symbol) with
            | true, address -> address
            | _ -> raise (EntryPointNotFoundException $"{name} has no {symbol}: Flows.Distributed needs OpenMPI (4.x or later)")
        { Library = name
          InitThread = delegateFor (export "MPI_Init_thread")
          Initialized = delegateFor (export "MPI_Initialized")
          Finalized = delegateFor (export "MPI_Finalized")
          CommRank = delegateFor (export "MPI_Comm_rank")
          CommSize = delegateFor (export "MPI_Comm_size")
          Allreduce = delegateFor (export "MPI_Allreduce")
          Bcast = delegateFor (export "MPI_Bcast")
          Barrier = delegateFor (export "MPI_Barrier")
          Abort = delegateFor (export "MPI_Abort")
          Finalize = delegateFor (export "MPI_Finalize")
          QueryCudaSupport =
              match NativeLibrary.TryGetExport(handle, "MPIX_Query_cuda_support") with
              | true, address -> Some(delegateFor address)
              | _ -> None
          World = export "ompi_mpi_comm_world"
          Float = export "ompi_mpi_float"
          Double = export "ompi_mpi_double"
          Sum = export "ompi_mpi_op_sum" }

/// The bound library, loaded on first use.
let api = lazy (load ())

/// Raises unless an MPI call returned MPI_SUCCESS (0).
let check (call: string) (code: int) =
    if code <> 0 then raise (InvalidOperationException $"{call} failed with MPI error code {code}")
