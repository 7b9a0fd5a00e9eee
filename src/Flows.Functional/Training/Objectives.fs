namespace Flows.Training

open System
open Flows
open Flows.Tensors

/// An unnormalised log-density on rows [batch; dim] -> [batch], differentiable in its input.
type LogDensity = Tensor -> Tensor

/// Training objectives and the estimates that judge a fitted flow.
[<RequireQualifiedAccess>]
module Objectives =

    /// Forward KL up to a constant: the mean negative log-likelihood of data rows, in nats.
    let negativeLogLikelihood (p: Params) (ctx: Context) (x: Tensor) (flow: Flow) =
        -((Flow.logProbWith p ctx x flow).mean())

    /// Converts a per-row NLL in nats to bits per dimension.
    let bitsPerDim (dims: int) (nllNats: float) = nllNats / (float dims * log 2.0)

    /// Bits per dimension of discrete data with `levels` values per dimension, from the NLL in nats
    /// of its uniform dequantisation x = (k + u)/levels − ½ (see Images.dequantise): the density of
    /// k + u is q(x)/levelsᴰ, so each dimension adds log2(levels). A uniform model scores log2(levels).
    let dequantisedBitsPerDim (levels: int) (dims: int) (nllNats: float) =
        // With L = levels and D = dims, the model gives the integer image k the mass of its cell:
        //   P(k) = ∫_{cell(k)} q(x) dx = L⁻ᴰ ∫_{[0,1)ᴰ} q((k + u)/L − ½) du,
        // since x = (k + u)/L − ½ maps the unit cube onto the cell with |det ∂x/∂u| = L⁻ᴰ (the −½
        // shift has determinant 1). Jensen's inequality under u ~ U[0, 1)ᴰ then bounds it:
        //   −log P(k) ≤ E_u[−log q(x)] + D·log L,
        // so the dequantised NLL plus D·log L, over D·ln 2, bounds the discrete bits/dim from above.
        bitsPerDim dims (nllNats + float dims * log (float levels))

    /// Reverse KL up to log Z: E_q[log q(x) − log p̃(x)] from n reparameterised samples.
    let reverseKl (p: Params) (ctx: Context) (gen: Generator) (n: int) (target: LogDensity) (flow: Flow) =
        let x, logQ = Flow.sampleAndLogProbWith p ctx gen n flow
        (logQ - target x).mean()

    /// Importance-sampling estimate of log Z = log ∫ p̃ with n draws from the flow, with the
    /// effective sample size (Σw)²/Σw² of the weights w = p̃/q (n for a perfect fit).
    let logPartition (gen: Generator) (n: int) (target: LogDensity) (flow: Flow) =
        Guard.positive (nameof n) n
        let x, logQ = Flow.sampleAndLogProb Context.none gen n flow
        let logW = (target x - logQ).noDiff()
        let logZ = logW.logsumexp(0).toScalar() - log (float n)
        let ess = exp (2.0 * logW.logsumexp(0).toScalar() - (logW * 2.0).logsumexp(0).toScalar())
        logZ, ess
