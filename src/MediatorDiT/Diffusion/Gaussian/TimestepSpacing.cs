namespace MediatorDiT.Diffusion;

/// <summary>
/// DiT's space_timesteps: which steps of the original process a respaced one keeps. "ddimN" takes the
/// integer stride that gives exactly N steps (range(0, T, stride)); otherwise comma-separated counts
/// split the T steps into equal sections (the first T % sections one step longer) and take each count
/// evenly within its section, indices rounded half to even as Python's round does. "250" is one section.
/// An empty string keeps every step.
/// </summary>
public static class TimestepSpacing
{
    /// <summary>The kept original steps, ascending.</summary>
    public static int[] Parse(int numTimesteps, string? sectionCounts)
    {
        if (numTimesteps <= 0) throw new MediatorDiTException($"the number of diffusion steps must be positive, got {numTimesteps}.");
        string spec = (sectionCounts ?? "").Trim();
        if (spec.Length == 0) return Enumerable.Range(0, numTimesteps).ToArray();
        if (spec.StartsWith("ddim", StringComparison.Ordinal))
        {
            if (!int.TryParse(spec.AsSpan(4), out int desired) || desired <= 0)
                throw new MediatorDiTException($"timestep respacing '{spec}' is malformed; expected 'ddimN' with a positive integer N.");
            for (int stride = 1; stride < numTimesteps; stride++)
                if ((numTimesteps + stride - 1) / stride == desired)
                    return Enumerable.Range(0, desired).Select(i => i * stride).ToArray();
            throw new MediatorDiTException($"timestep respacing '{spec}' cannot take exactly {desired} of {numTimesteps} steps with an integer stride.");
        }
        var counts = new List<int>();
        foreach (string part in spec.Split(','))
        {
            if (!int.TryParse(part.Trim(), out int c) || c <= 0)
                throw new MediatorDiTException($"timestep respacing '{spec}' is malformed; expected positive step counts such as '250' or '10,15,20', or 'ddimN'.");
            counts.Add(c);
        }
        return Sections(numTimesteps, counts);
    }

    /// <summary>The section rule for explicit counts.</summary>
    public static int[] Sections(int numTimesteps, IReadOnlyList<int> sectionCounts)
    {
        int sizePer = numTimesteps / sectionCounts.Count, extra = numTimesteps % sectionCounts.Count;
        int start = 0;
        var steps = new SortedSet<int>();
        for (int i = 0; i < sectionCounts.Count; i++)
        {
            int size = sizePer + (i < extra ? 1 : 0), count = sectionCounts[i];
            if (size < count)
                throw new MediatorDiTException($"timestep respacing cannot take {count} steps from a section of {size} (of {numTimesteps} steps in all).");
            double stride = count <= 1 ? 1 : (double)(size - 1) / (count - 1);
            double current = 0;
            for (int j = 0; j < count; j++)
            {
                steps.Add(start + (int)Math.Round(current, MidpointRounding.ToEven));
                current += stride;
            }
            start += size;
        }
        return steps.ToArray();
    }
}
