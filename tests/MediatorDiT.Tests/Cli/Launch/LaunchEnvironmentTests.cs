using MediatorDiT.Cli.Launch;

namespace MediatorDiT.Tests.Cli.Launch;

/// <summary>The rank and world size read from each launcher's environment variables.</summary>
public class LaunchEnvironmentTests
{
    private static LaunchEnvironment Detect(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return LaunchEnvironment.Detect(name => map.GetValueOrDefault(name));
    }

    [Fact]
    public void NoLauncherIsOneProcess() => Assert.Equal(LaunchEnvironment.Single, Detect());

    [Fact]
    public void MpichsMpiexecUsesMpi()
    {
        var launch = Detect(("PMI_RANK", "1"), ("PMI_SIZE", "2"), ("MPI_LOCALRANKID", "1"));
        Assert.Equal((RankTransport.Mpi, 1, 2, 1), (launch.Transport, launch.Rank, launch.WorldSize, launch.LocalRank));
    }

    [Fact]
    public void OpenMpisVariablesAreRead()
    {
        var launch = Detect(("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"));
        Assert.Equal((RankTransport.Mpi, 3, 4, 1), (launch.Transport, launch.Rank, launch.WorldSize, launch.LocalRank));
    }

    [Fact]
    public void TorchrunVariablesUseTcpToMasterAddr()
    {
        var launch = Detect(("RANK", "2"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "node0"), ("MASTER_PORT", "29500"), ("TORCHELASTIC_RUN_ID", "x"));
        Assert.Equal(new LaunchEnvironment("torchrun", RankTransport.Tcp, 2, 4, 0, "node0", 29500), launch);
    }

    [Fact]
    public void AnIndexedJobGivesTheRankAsItsCompletionIndex()
    {
        var launch = Detect(("JOB_COMPLETION_INDEX", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "mdit-0.mdit"), ("MASTER_PORT", "29500"));
        Assert.Equal(new LaunchEnvironment("Kubernetes Indexed Job", RankTransport.Tcp, 1, 2, 0, "mdit-0.mdit", 29500), launch);
    }

    [Fact]
    public void SrunWithoutPmiUsesTcp()
    {
        var launch = Detect(("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8"), ("SLURM_LOCALID", "1"), ("MASTER_ADDR", "n1"), ("MASTER_PORT", "29500"));
        Assert.Equal(new LaunchEnvironment("Slurm srun", RankTransport.Tcp, 5, 8, 1, "n1", 29500), launch);
        // srun with PMI (--mpi=pmi2) sets PMI_RANK too: MPI then.
        Assert.Equal(RankTransport.Mpi, Detect(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("PMI_RANK", "0"), ("PMI_SIZE", "2")).Transport);
    }

    [Fact]
    public void OneRankIsOneProcess() => Assert.Equal(RankTransport.None, Detect(("RANK", "0"), ("WORLD_SIZE", "1")).Transport);

    [Theory]
    [InlineData("RANK=1,WORLD_SIZE=2", "the RANK/WORLD_SIZE launcher set rank 1 of 2 but MASTER_ADDR and MASTER_PORT are not both set; set them to rank 0's host and a free port on every rank.")]
    [InlineData("WORLD_SIZE=2", "WORLD_SIZE is set but RANK is not (nor JOB_COMPLETION_INDEX); set the rank of every process.")]
    [InlineData("PMI_RANK=x,PMI_SIZE=2", "the environment variable PMI_RANK must be a whole number of at least 0, found 'x'.")]
    [InlineData("RANK=2,WORLD_SIZE=2", "the RANK/WORLD_SIZE launcher gave rank 2, but the world size is 2.")]
    [InlineData("RANK=1,WORLD_SIZE=2,MASTER_ADDR=a,MASTER_PORT=70000", "MASTER_PORT must be a TCP port (1 to 65535), found 70000.")]
    public void MalformedVariablesAreOneSentence(string variables, string message)
    {
        var pairs = variables.Split(',').Select(v => (v.Split('=')[0], v.Split('=')[1])).ToArray();
        Assert.Equal(message, Assert.Throws<MediatorDiTException>(() => Detect(pairs)).Message);
    }
}
