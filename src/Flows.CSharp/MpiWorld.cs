using Flows.Distributed;
using Flows.Training;

namespace Flows.CSharp;

/// <summary>The processes of one MPI job (<c>mpirun -np N dotnet app.dll</c>, OpenMPI) training one model together with
/// <c>DensityModel.FitShard</c>. Start it once per process; dispose it (every rank) before the process ends.</summary>
public sealed class MpiWorld : IDisposable
{
    private MpiWorld(Mpi mpi) => Mpi = mpi;

    internal Mpi Mpi { get; }

    internal ICollective Collective => Mpi;

    /// <summary>Whether this process was started by an MPI launcher (mpirun).</summary>
    public static bool Launched => Mpi.Launched;

    /// <summary>Initialises MPI (once per process; later calls give the same world).</summary>
    /// <exception cref="DllNotFoundException">OpenMPI is not installed; the message says how to install it.</exception>
    public static MpiWorld Start() => new(Mpi.Start());

    /// <summary>This process's index, 0 … <see cref="Size"/> − 1; rank 0 usually reports and writes files.</summary>
    public int Rank => Mpi.Rank;

    /// <summary>How many processes the job has.</summary>
    public int Size => Mpi.Size;

    /// <summary>Whether a GPU model's gradients and parameters go to MPI as device pointers: OpenMPI reports CUDA support
    /// (<c>MPIX_Query_cuda_support</c>), or <c>FLOWS_MPI_CUDA_AWARE=1</c> forces it (<c>0</c> forces host staging).
    /// Otherwise they are staged through host memory.</summary>
    public bool CudaAware => Mpi.CudaAware;

    /// <summary>Why <see cref="CudaAware"/> is what it is, in words (the library's answer or the override).</summary>
    public string CudaAwareReason => Mpi.CudaAwareReason;

    /// <summary>Waits until every rank gets here.</summary>
    public void Barrier() => Mpi.Barrier();

    /// <summary>Ends every process of the job with <paramref name="exitCode"/>: what a failing rank should do, so that
    /// no other rank waits for it forever.</summary>
    /// <param name="exitCode">The job's exit code.</param>
    public void Abort(int exitCode) => Mpi.Abort(exitCode);

    /// <summary>Finalises MPI for this process.</summary>
    public void Dispose() => Mpi.Stop();
}
