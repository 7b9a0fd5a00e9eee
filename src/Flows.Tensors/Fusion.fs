namespace Flows.Tensors

open Flows.Tensors.Backend

/// Fused primitives: a whole layer written as raw ops, recorded as one node instead of one per op,
/// beside a composed definition of the same function. The raw backward runs only where nothing can
/// differentiate it again (a sweep while no level records, with constant adjoints); everywhere else
/// (nested levels, gradients of gradients) the composed definition is differentiated instead, so
/// fusion never changes what can be differentiated.
[<AutoOpen>]
module Fusion =

    /// A raw backward: whether each input's adjoint is needed, then one adjoint per output, to one
    /// adjoint per input (null where not needed). It must return fresh storage: the sweep may recycle
    /// the output adjoints as soon as it returns.
    type FusedBackward = bool[] -> RawTensor[] -> RawTensor[]

    /// A raw forward: raw inputs to raw outputs and the backward at those inputs (which may keep the
    /// forward's intermediates).
    type FusedForward = RawTensor[] -> RawTensor[] * FusedBackward

    type Tensor with
        /// Applies a fused primitive to `inputs`; `reference` computes the same outputs with
        /// differentiable ops.
        static member fused(inputs: Tensor[], forward: FusedForward, reference: Tensor[] -> Tensor[]) : Tensor[] =
            if not (inputs.Length > 0) then Shape.fail "fused" "needs at least one input"
            let tag = inputs |> Array.fold (fun m t -> max m t.Tag) -1
            let nested = inputs |> Array.exists (fun t -> t.Tag >= 0 && (t.Tag <> tag || t.Inner.Tag >= 0))
            if nested then reference inputs
            elif tag < 0 then fst (forward (inputs |> Array.map _.Raw)) |> Array.map Tensor
            else
                let needed = inputs |> Array.map (fun t -> t.Tag = tag)
                let mutable rawBackward: FusedBackward = Unchecked.defaultof<_>
                let run (raws: RawTensor[]) =
                    let outputs, backward = forward raws
                    rawBackward <- backward
                    outputs
                Tensor.custom(
                    inputs,
                    run,
                    fun primals _ adjoints ->
                        if Levels.Open = 0 && adjoints |> Array.forall _.isConst then
                            rawBackward needed (adjoints |> Array.map _.Raw) |> Array.map (fun r -> if isNull (box r) then null else Tensor r)
                        else
                            let _, pullback = Ad.vjpN reference primals
                            pullback adjoints)
