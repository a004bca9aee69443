using System.Globalization;
using MediatorDiT.Training.Distributed;

namespace MediatorDiT.Cli.Launch;

/// <summary>How the ranks of a data-parallel command are joined.</summary>
public enum RankTransport
{
    /// <summary>One process, no launcher.</summary>
    None,
    /// <summary>An MPI launcher (mpiexec, or srun with PMI): MPICH's library.</summary>
    Mpi,
    /// <summary>torchrun-style variables: TCP to rank 0 at MASTER_ADDR:MASTER_PORT.</summary>
    Tcp,
}

/// <summary>
/// The rank and world size a launcher gave this process, read from its environment: MPICH's mpiexec (and srun
/// --mpi=pmi2: PMI_RANK, PMI_SIZE), Open MPI's mpiexec (OMPI_COMM_WORLD_RANK, ..._SIZE), torchrun and hand-set
/// variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm's srun without PMI (SLURM_PROCID,
/// SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR and MASTER_PORT) and a Kubernetes Indexed Job
/// (JOB_COMPLETION_INDEX, with WORLD_SIZE, MASTER_ADDR and MASTER_PORT). The library's communicators know nothing
/// of launchers; this is the CLI's part.
/// </summary>
public sealed record LaunchEnvironment(string Launcher, RankTransport Transport, int Rank, int WorldSize, int LocalRank, string? MasterAddr, int? MasterPort)
{
    /// <summary>One process without a launcher.</summary>
    public static LaunchEnvironment Single { get; } = new("none", RankTransport.None, 0, 1, 0, null, null);

    /// <summary>The launch this process's environment describes.</summary>
    public static LaunchEnvironment Detect() => Detect(Environment.GetEnvironmentVariable);

    /// <summary>The launch <paramref name="variable"/> (name to value, null when unset) describes.</summary>
    /// <exception cref="MediatorDiTException">A variable is malformed or one that the launcher needs is missing.</exception>
    public static LaunchEnvironment Detect(Func<string, string?> variable)
    {
        int? Int(string name, int min = 0)
        {
            string? text = variable(name);
            if (string.IsNullOrWhiteSpace(text)) return null;
            if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min)
                throw new MediatorDiTException($"the environment variable {name} must be a whole number of at least {min}, found '{text}'.");
            return v;
        }
        LaunchEnvironment Make(string launcher, RankTransport transport, int rank, int size, int local)
        {
            if (rank >= size) throw new MediatorDiTException($"the {launcher} launcher gave rank {rank}, but the world size is {size}.");
            if (size == 1) return Single with { Launcher = launcher };
            if (transport != RankTransport.Tcp) return new(launcher, transport, rank, size, local, null, null);
            string? addr = variable("MASTER_ADDR");
            int? port = Int("MASTER_PORT", 1);
            if (string.IsNullOrWhiteSpace(addr) || port is null)
                throw new MediatorDiTException(
                    $"the {launcher} launcher set rank {rank} of {size} but MASTER_ADDR and MASTER_PORT are not both set; set them to rank 0's host and a free port on every rank.");
            if (port > 65535) throw new MediatorDiTException($"MASTER_PORT must be a TCP port (1 to 65535), found {port}.");
            return new(launcher, transport, rank, size, local, addr.Trim(), port);
        }

        if (Int("PMI_RANK") is int pmiRank && Int("PMI_SIZE", 1) is int pmiSize)
            return Make("MPI (PMI)", RankTransport.Mpi, pmiRank, pmiSize, Int("MPI_LOCALRANKID") ?? 0);
        if (Int("OMPI_COMM_WORLD_RANK") is int ompiRank && Int("OMPI_COMM_WORLD_SIZE", 1) is int ompiSize)
            return Make("Open MPI", RankTransport.Mpi, ompiRank, ompiSize, Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0);
        if (Int("WORLD_SIZE", 1) is int worldSize)
        {
            int rank = Int("RANK") ?? Int("JOB_COMPLETION_INDEX")
                ?? throw new MediatorDiTException("WORLD_SIZE is set but RANK is not (nor JOB_COMPLETION_INDEX); set the rank of every process.");
            string launcher = variable("RANK") is null ? "Kubernetes Indexed Job" : variable("TORCHELASTIC_RUN_ID") is null ? "RANK/WORLD_SIZE" : "torchrun";
            return Make(launcher, RankTransport.Tcp, rank, worldSize, Int("LOCAL_RANK") ?? 0);
        }
        if (Int("SLURM_PROCID") is int slurmRank && Int("SLURM_NTASKS", 1) is int slurmSize)
            return Make("Slurm srun", RankTransport.Tcp, slurmRank, slurmSize, Int("SLURM_LOCALID") ?? 0);
        return Single;
    }

    /// <summary>Joins the ranks (one process: <see cref="SingleProcessCommunicator"/>).</summary>
    /// <param name="onRankFailure">Called once with a sentence when a peer rank dies or stops answering.</param>
    /// <param name="rankTimeout">How long a peer's heartbeat (MPI or TCP) may go unanswered; null: MDIT_RANK_TIMEOUT seconds, else 30 s.</param>
    public ICommunicator Connect(Action<string>? onRankFailure, TimeSpan? rankTimeout = null)
    {
        switch (Transport)
        {
            case RankTransport.Mpi:
                var timeout = rankTimeout ?? RankTimeoutFromEnvironment();
                var mpi = MpiCommunicator.Create(new MpiCommunicator.Options { OnRankFailure = onRankFailure, RankTimeout = timeout });
                if (mpi.Rank != Rank || mpi.Size != WorldSize)
                    throw new MediatorDiTException($"MPI reports rank {mpi.Rank} of {mpi.Size}, but the launcher set rank {Rank} of {WorldSize}; launch with MPICH's mpiexec.");
                return mpi;
            case RankTransport.Tcp:
                return TcpCommunicator.Connect(Rank, WorldSize, MasterAddr!, MasterPort!.Value,
                    new TcpCommunicator.Options { OnRankFailure = onRankFailure, RankTimeout = rankTimeout ?? RankTimeoutFromEnvironment() });
            default:
                return SingleProcessCommunicator.Instance;
        }
    }

    private static TimeSpan RankTimeoutFromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable("MDIT_RANK_TIMEOUT");
        if (string.IsNullOrWhiteSpace(text)) return TimeSpan.FromSeconds(30);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !(seconds >= 1))
            throw new MediatorDiTException($"MDIT_RANK_TIMEOUT must be a number of seconds, at least 1, found '{text}'.");
        return TimeSpan.FromSeconds(seconds);
    }
}
