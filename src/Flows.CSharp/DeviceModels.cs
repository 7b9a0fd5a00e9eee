using Flows.Tensors;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>The models on GPUs that are alive, so that disposing one releases only the memory no other shares:
/// a fitted model keeps the buffers (masks, permutations) of the model it was fitted from.</summary>
internal static class DeviceModels
{
    private static readonly List<WeakReference<DensityModel>> Live = new();

    public static void Register(DensityModel model)
    {
        lock (Live)
        {
            Live.RemoveAll(r => !r.TryGetTarget(out _));
            Live.Add(new WeakReference<DensityModel>(model));
        }
    }

    public static void Release(DensityModel disposed, CoreModel core)
    {
        lock (Live)
        {
            Live.RemoveAll(r => !r.TryGetTarget(out var m) || ReferenceEquals(m, disposed));
            var kept = new List<Tensor>();
            foreach (var reference in Live)
                if (reference.TryGetTarget(out var other) && other.CoreIfLive is CoreModel otherCore)
                    kept.AddRange(FlowModule.tensors(otherCore.Flow));
            Memory.release(kept, FlowModule.tensors(core.Flow));
        }
    }
}
