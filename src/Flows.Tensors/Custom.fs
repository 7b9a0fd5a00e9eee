namespace Flows.Tensors

open Flows.Tensors.Backend

/// Differentiable primitives defined by the user: a raw forward and a hand-written backward over
/// several inputs and outputs (the ODE adjoint, fused kernels). The backward gets the input
/// primals, the output primals and one adjoint per output, and returns one adjoint per input; it is
/// itself written with differentiable ops, so it can be differentiated again when that makes sense.
[<AutoOpen>]
module Custom =

    /// The raw forward of a custom primitive: raw inputs to raw outputs.
    type CustomForward = RawTensor[] -> RawTensor[]
    /// The backward of a custom primitive: inputs, outputs, output adjoints to input adjoints.
    type CustomBackward = Tensor[] -> Tensor[] -> Tensor[] -> Tensor[]

    let rec private apply (inputs: Tensor[]) (forward: CustomForward) (backward: CustomBackward) : Tensor[] =
        let tag = inputs |> Array.fold (fun m t -> max m t.Tag) -1
        if tag < 0 then forward (inputs |> Array.map _.Raw) |> Array.map Tensor
        else
            let primals = inputs |> Array.map (fun t -> if t.Tag = tag then t.Inner else t)
            let outputs = apply primals forward backward
            let sizes = outputs |> Array.map _.numel
            let offsets = Array.scan (+) 0 sizes
            let total = offsets[offsets.Length - 1]
            let active = [| for i in 0 .. inputs.Length - 1 do if inputs[i].Tag = tag then i |]
            // One hub node owns the backward; its adjoint is the outputs' adjoints flattened end to end,
            // which each output node fills in its own segment.
            let hubBackward (flat: Tensor) =
                let adjoints = outputs |> Array.mapi (fun k o -> flat.narrow(0, offsets[k], sizes[k]).reshape o.shape)
                let grads = backward primals outputs adjoints
                if grads.Length <> inputs.Length then
                    invalidOp $"custom op backward returned {grads.Length} adjoints for {inputs.Length} inputs"
                active |> Array.map (fun i -> grads[i])
            let hubRaw = outputs[0].Raw.Backend.Full([| total |], outputs[0].dtype, 0.0)
            let hub = Tensor(hubRaw, Tensor hubRaw, Node(tag, active |> Array.map (fun i -> inputs[i]), hubBackward))
            outputs
            |> Array.mapi (fun k o ->
                let segment (adj: Tensor) = adj.reshape([| sizes[k] |]).pad([| offsets[k] |], [| total - offsets[k] - sizes[k] |])
                Tensor(o.Raw, o, Node(tag, [| hub |], fun adj -> [| segment adj |])))

    type Tensor with
        /// A constant tensor over raw storage, for the raw forward of a custom primitive (raw
        /// storage is immutable, so no copy is needed).
        static member ofRaw(raw: RawTensor) = Tensor raw
        /// The raw storage of this tensor's innermost primal, for the same purpose.
        member t.raw = t.Raw

        /// Applies a custom differentiable primitive to `inputs`.
        static member custom(inputs: Tensor[], forward: CustomForward, backward: CustomBackward) : Tensor[] =
            if not (inputs.Length > 0) then Shape.fail "custom" ("needs at least one input")
            apply inputs forward backward

        /// A custom primitive with one output, recorded as one node (no hub): `backward primals
        /// output adjoint needed` returns an adjoint for each input whose `needed` is true (others may be null).
        static member custom1(inputs: Tensor[], forward: RawTensor[] -> RawTensor, backward: Tensor[] -> Tensor -> Tensor -> bool[] -> Tensor[]) : Tensor =
            if not (inputs.Length > 0) then Shape.fail "custom1" ("needs at least one input")
            Tensor.LiftMany(inputs, forward, backward)
