using MediatorDiT.Models;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// Class-conditional sampling as DiT's sample.py runs it: with a guidance scale above 1 the starting
/// noise is duplicated, the second half labelled with the null class (num_classes), the network called
/// through forward_with_cfg (guidance on the guided channels of <see cref="ClassifierFreeGuidance"/>), and the conditional
/// half returned; otherwise the plain conditional network. No clipping of x_0 predictions, as in sample.py.
/// </summary>
public static class DitSampling
{
    /// <summary>
    /// z (B, C, H, W) -> samples (B, C, H, W) over every step of <paramref name="diffusion"/> (ancestral, or
    /// DDIM with <paramref name="eta"/>), guided at <paramref name="cfgScale"/> on the model's default
    /// channels (<see cref="ClassifierFreeGuidance.ForModel"/>). Noise draws cover the doubled batch when guiding.
    /// </summary>
    public static Tensor Sample(GaussianDiffusion diffusion, SiTModel model, Tensor z, int[] classes, float cfgScale,
        IDiffusionNoise noise, bool ddim = false, float eta = 0f, Action<int>? onStep = null,
        CancellationToken cancellationToken = default) =>
        Sample(diffusion, model, z, classes, cfgScale > 1f ? ClassifierFreeGuidance.ForModel(cfgScale, model.Config.InChannels) : null,
            noise, ddim, eta, onStep, cancellationToken);

    /// <summary>
    /// As above with explicit guidance (null or a scale of 1: none). "All channels" means the C predicted-noise
    /// channels, not the learned-variance ones, as in the official code's commented-out alternative.
    /// With replayed noise the draw count and shape are checked before the first network call
    /// (<see cref="IDiffusionNoise.Prepare"/>): one draw of the (doubled) state per step.
    /// </summary>
    public static Tensor Sample(GaussianDiffusion diffusion, SiTModel model, Tensor z, int[] classes, ClassifierFreeGuidance? guidance,
        IDiffusionNoise noise, bool ddim = false, float eta = 0f, Action<int>? onStep = null,
        CancellationToken cancellationToken = default)
    {
        int batch = z.Dim(0), per = z.Length / batch, numClasses = model.Config.NumClasses;
        if (classes.Length != batch)
            throw new MediatorDiTException($"{classes.Length} class labels were given for {batch} starting samples; expected one per sample.");
        foreach (int c in classes)
            if ((uint)c >= (uint)numClasses)
                throw new MediatorDiTException($"class label {c} is outside the model's 0..{numClasses - 1}.");

        bool guided = guidance is { IsActive: true };
        Tensor start = z;
        NoisePredictor predictor;
        if (guided)
        {
            var shape = (int[])z.Shape.Clone();
            shape[0] = 2 * batch;
            start = new Tensor(shape);
            z.Span.CopyTo(start.Span);
            z.Span.CopyTo(start.Span[(batch * per)..]);
            int[] labels = [.. classes, .. Enumerable.Repeat(numClasses, batch)];
            predictor = DitNoisePredictors.Guided(model, labels, guidance!.Scale, guidance.ChannelsFor(model.Config.InChannels));
        }
        else
        {
            predictor = DitNoisePredictors.Conditional(model, classes);
        }

        noise.Prepare(start.Shape, diffusion.NumTimesteps);
        Action<int, GaussianStep>? report = onStep is null ? null : (i, _) => onStep(i);
        var result = ddim
            ? diffusion.DdimSampleLoop(predictor, start, noise, eta, clipDenoised: false, report, cancellationToken)
            : diffusion.PSampleLoop(predictor, start, noise, clipDenoised: false, report, cancellationToken);
        if (!guided) return result;
        var half = new Tensor(z.Shape);
        result.Span[..(batch * per)].CopyTo(half.Span);
        return half;
    }
}
