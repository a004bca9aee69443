using System.Runtime.InteropServices;
using System.Text;
using MediatorDiT.Tensors;

namespace MediatorDiT.Training.Distributed;

/// <summary>Agreements built on <see cref="ICommunicator.AllGather{T}"/> and <see cref="ICommunicator.Broadcast{T}"/>.</summary>
public static class Collectives
{
    /// <summary>True on every rank when <paramref name="flag"/> is true on any rank.</summary>
    public static bool Any(this ICommunicator comm, bool flag)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return flag;
        var gathered = new byte[comm.Size];
        comm.AllGather<byte>([flag ? (byte)1 : (byte)0], gathered);
        return gathered.Any(b => b != 0);
    }

    /// <summary>
    /// Every rank passes what its part of a phase threw (null: it went well). When any rank failed, every rank
    /// throws: a failing rank its own exception, rank 0 (when it did not fail) a <see cref="RunStoppedException"/>
    /// naming the failing ranks, the others a quiet one. So all ranks leave the phase together. With more than one
    /// rank the failing rank's exception comes wrapped in a <see cref="RunStoppedException"/> (the others know of it).
    /// </summary>
    /// <param name="comm">The ranks.</param>
    /// <param name="failure">This rank's exception, or null.</param>
    /// <param name="phase">What the ranks were doing, for the message ("preparing the run").</param>
    public static void Agree(this ICommunicator comm, Exception? failure, string phase)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1)
        {
            if (failure is not null) ExceptionDispatch(failure);
            return;
        }
        // Per rank 0 (it went well) or its message's hash, never 0, so a rank repeating rank 0's message stays quiet.
        long mine = failure is null ? 0 : (long)(StableHash(failure.GetType().Name + failure.Message) | 1);
        var gathered = comm.GatherValue(mine);
        if (failure is RunStoppedException) ExceptionDispatch(failure);
        if (failure is not null)
        {
            if (comm.Rank != 0 && gathered[0] == mine) throw new RunStoppedException(failure.Message, quiet: true);
            throw new RunStoppedException(failure);
        }
        var failed = Enumerable.Range(0, comm.Size).Where(r => gathered[r] != 0).ToArray();
        if (failed.Length == 0) return;
        string ranks = failed.Length == 1 ? $"rank {failed[0]}" : $"ranks {string.Join(", ", failed)}";
        throw new RunStoppedException($"{ranks} failed while {phase} (see {(failed.Length == 1 ? "its" : "their")} message); all ranks stopped.",
            quiet: comm.Rank != 0);
    }

    private static ulong StableHash(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text) h = (h ^ c) * 1099511628211UL;
        return h;
    }

    private static void ExceptionDispatch(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();

    /// <summary>Rank <paramref name="root"/>'s text on every rank (others pass anything, e.g. null).</summary>
    public static string BroadcastString(this ICommunicator comm, string? text, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return text ?? throw new ArgumentNullException(nameof(text));
        byte[] bytes = comm.Rank == root ? Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))) : [];
        Span<long> length = [bytes.LongLength];
        comm.Broadcast(length, root);
        if (comm.Rank != root) bytes = new byte[length[0]];
        comm.Broadcast<byte>(bytes, root);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Rank <paramref name="root"/>'s values of every tensor into every rank's (same shapes on all ranks).</summary>
    public static void BroadcastTensors(this ICommunicator comm, IEnumerable<Tensor> tensors, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (comm.Size == 1) return;
        foreach (var t in tensors) comm.Broadcast(t.Span, root);
    }

    /// <summary>One value per rank, in rank order.</summary>
    public static T[] GatherValue<T>(this ICommunicator comm, T value) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(comm);
        var gathered = new T[comm.Size];
        comm.AllGather<T>(MemoryMarshal.CreateReadOnlySpan(ref value, 1), gathered);
        return gathered;
    }
}
