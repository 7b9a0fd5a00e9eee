namespace Flows.Vae

open System
open Flows
open Flows.Bijectors
open Flows.Nn
open Flows.Tensors

/// The family of the amortised posterior q(z | x): a diagonal Gaussian N(μ(x), σ(x)²) pushed through
/// K flow layers that read the encoder's features h(x). Planar, radial and Sylvester layers are
/// amortised by a hypernetwork (each row's layer parameters a linear map of h); IAF layers by
/// concatenation (h enters their MADE conditioners beside z, Kingma et al. 2016).
[<RequireQualifiedAccess>]
type Posterior =
    /// The diagonal Gaussian alone (Kingma & Welling 2014).
    | Gaussian
    /// K amortised planar layers (Rezende & Mohamed 2015).
    | Planar of layers: int
    /// K amortised radial layers (Rezende & Mohamed 2015).
    | Radial of layers: int
    /// K amortised Sylvester layers (van den Berg et al. 2018); triangular layers alternate Q = I and
    /// the reversal.
    | Sylvester of kind: AmortisedSylvester.Kind * layers: int
    /// K IAF layers (Kingma et al. 2016), each a MADE of these hidden widths on [z, h], alternating
    /// the natural and the reversed order.
    | Iaf of layers: int * hidden: int list

/// Names and layers of posterior families.
[<RequireQualifiedAccess>]
module Posterior =

    /// The families `parse` knows, with their default K.
    let names = [ "gaussian"; "planar"; "radial"; "sylvester-o"; "sylvester-h"; "sylvester-t"; "iaf" ]

    /// A family from its name, "family" or "family-K" (K layers): gaussian, planar (K = 4), radial
    /// (K = 4), sylvester-o (K = 4, M = latent/2 columns), sylvester-h (K = 4, 4 reflections),
    /// sylvester-t (K = 4), iaf (K = 2, hidden widths [4·latent; 4·latent]).
    let parse (latent: int) (name: string) =
        Guard.positive (nameof latent) latent
        let family, layers =
            match name.LastIndexOf '-' with
            | i when i > 0 && fst (Int32.TryParse(name.Substring(i + 1))) -> name.Substring(0, i), Some(int (name.Substring(i + 1)))
            | _ -> name, None
        layers |> Option.iter (Guard.positive (nameof layers))
        let k fallback = defaultArg layers fallback
        match family with
        | "gaussian" when layers.IsNone -> Posterior.Gaussian
        | "planar" -> Posterior.Planar(k 4)
        | "radial" -> Posterior.Radial(k 4)
        | "sylvester-o" -> Posterior.Sylvester(AmortisedSylvester.Kind.Orthogonal(max 1 (latent / 2)), k 4)
        | "sylvester-h" -> Posterior.Sylvester(AmortisedSylvester.Kind.Householder 4, k 4)
        | "sylvester-t" -> Posterior.Sylvester(AmortisedSylvester.Kind.Triangular false, k 4)
        | "iaf" -> Posterior.Iaf(k 2, [ 4 * latent; 4 * latent ])
        | _ -> invalidArg (nameof name) $"""unknown posterior '{name}'; expected one of {String.Join(", ", names)}, optionally with "-K" layers (not gaussian)"""

    /// The flow layers on `latent` dimensions reading features of width `features`, in sampling order.
    let layers (gen: Generator) (dtype: Dtype) (latent: int) (features: int) (posterior: Posterior) : Bijector list =
        match posterior with
        | Posterior.Gaussian -> []
        | Posterior.Planar k -> List.init k (fun _ -> AmortisedPlanar.create gen dtype latent features)
        | Posterior.Radial k -> List.init k (fun _ -> AmortisedRadial.create gen dtype latent features)
        | Posterior.Sylvester(kind, k) ->
            let kindOf i = match kind with AmortisedSylvester.Kind.Triangular _ -> AmortisedSylvester.Kind.Triangular(i % 2 = 1) | other -> other
            List.init k (fun i -> AmortisedSylvester.create (kindOf i) gen dtype latent features)
        | Posterior.Iaf(k, hidden) ->
            List.init k (fun i ->
                Autoregressive.iaf gen dtype
                    { Dim = latent; Hidden = hidden; Order = (if i % 2 = 0 then Order.Natural else Order.Reversed)
                      Activation = Activation.Elu; ResidualBlocks = 0; Clamp = 3.0; ContextDim = features })
