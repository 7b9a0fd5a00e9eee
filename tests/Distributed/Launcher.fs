/// Runs the worker under OpenMPI's mpirun: as root where CI runs (--allow-run-as-root), more ranks
/// than cores allowed (--oversubscribe).
module Flows.Distributed.Tests.Launcher

open System
open System.Diagnostics
open System.IO
open Xunit

/// Where mpirun is, or why the tests cannot run.
let mpirun =
    lazy (
        Environment.GetEnvironmentVariable("PATH").Split(':')
        |> Array.map (fun folder -> Path.Combine(folder, "mpirun"))
        |> Array.tryFind File.Exists)

/// A fact that needs mpirun: skipped with the reason when OpenMPI is not installed.
type MpiFactAttribute() as this =
    inherit FactAttribute()
    do
        if mpirun.Value.IsNone then
            this.Skip <- "NOT RUN: mpirun was not found; install OpenMPI with `apt-get install -y openmpi-bin libopenmpi3`"

/// The exit code and the output of `mpirun -np ranks dotnet program arguments` for a program beside the
/// tests, with `environment` added to every rank's.
let runWith (environment: (string * string) list) (program: string) (ranks: int) (arguments: string list) =
    let worker = Path.Combine(AppContext.BaseDirectory, program)
    let start = ProcessStartInfo(mpirun.Value.Value, RedirectStandardOutput = true, RedirectStandardError = true)
    for a in [ "--allow-run-as-root"; "--oversubscribe"; "-np"; string ranks; "dotnet"; worker ] @ arguments do
        start.ArgumentList.Add a
    start.Environment["OMPI_MCA_rmaps_base_oversubscribe"] <- "1"
    // no terminal control sequences in the captured output
    start.Environment["TERM"] <- "dumb"
    for name, value in environment do
        start.Environment[name] <- value
    use p = Process.Start start
    let output = p.StandardOutput.ReadToEndAsync()
    let error = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(TimeSpan.FromMinutes 3.0)) then
        p.Kill true
        failwith $"mpirun -np {ranks} did not finish in 3 minutes: {output.Result}\n{error.Result}"
    p.ExitCode, output.Result + error.Result

/// `runWith` and no added environment.
let runProgram (program: string) (ranks: int) (arguments: string list) = runWith [] program ranks arguments

/// A fresh folder under the temporary folder.
let freshFolder () =
    let folder = Path.Combine(Path.GetTempPath(), $"flows-mpi-{Guid.NewGuid():N}")
    Directory.CreateDirectory folder |> ignore
    folder

/// `runProgram` on the test worker.
let run (ranks: int) (arguments: string list) = runProgram "Worker.dll" ranks arguments
