/// Whether MPI may be handed device pointers. OpenMPI built with CUDA support reads and writes GPU
/// memory itself (it reports so through MPIX_Query_cuda_support, which is only meaningful after
/// MPI_Init); any other build must be given host memory.
module internal Flows.Distributed.CudaAware

open System

/// The environment variable that forces the choice: 1 (device pointers) or 0 (host staging).
[<Literal>]
let Variable = "FLOWS_MPI_CUDA_AWARE"

/// Whether device buffers go to MPI as they are, and why, in words.
type Verdict = { Enabled: bool; Reason: string }

/// The override in the environment (None: ask the library); read before MPI_Init, so that a bad
/// value is refused before any rank has joined the job.
let requested () : bool option =
    match Environment.GetEnvironmentVariable Variable with
    | null | "" | "auto" -> None
    | "1" | "true" | "on" -> Some true
    | "0" | "false" | "off" -> Some false
    | other -> invalidArg Variable $"{Variable} must be 1 (pass device buffers), 0 (stage through host memory) or auto, got '{other}'"

/// The verdict for an initialised library: the override if given, else what the library reports.
let decide (api: NativeMpi.Api) (requested: bool option) : Verdict =
    match requested with
    | Some enabled -> { Enabled = enabled; Reason = $"forced by {Variable}" }
    | None ->
        match api.QueryCudaSupport with
        | Some query ->
            let answer = query.Invoke()
            { Enabled = (answer = 1); Reason = $"MPIX_Query_cuda_support() = {answer} in {api.Library}" }
        | None -> { Enabled = false; Reason = $"{api.Library} does not export MPIX_Query_cuda_support" }
