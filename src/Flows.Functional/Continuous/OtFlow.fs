namespace Flows.Continuous

open Flows
open Flows.Distributions
open Flows.Ode
open Flows.Tensors

/// The shape of an OT-Flow bijector.
type OtFlowOptions =
    { /// Width m of the potential's ResNet.
      Width: int
      /// ResNet layers (an opening layer and layers − 1 residual blocks; the paper uses 2).
      Layers: int
      /// Rank r of the quadratic term's A (the paper uses min(10, D)); capped at D + 1.
      Rank: int
      /// The end time T.
      EndTime: float
      /// Dopri5's Atol = Rtol (float32 solves use at least 1e-6, 1e-5).
      Tolerance: float
      /// Backpropagation through the solver or the adjoint method.
      Gradient: CnfGradient
      /// Width of the context the potential reads, Φ(x, t, c) (0: unconditional).
      ContextDim: int }

/// The weights of OT-Flow's objective NLL + α_L·L + α_R·R.
type OtFlowWeights =
    { /// α_L, the weight of the transport cost L = ∫ ½‖∇Φ‖² dt.
      Transport: float
      /// α_R, the weight of the HJB penalty R = ∫ |∂_tΦ − ½‖∇Φ‖²| dt.
      Hjb: float }

/// OT-Flow's objective value and its parts (means over the rows).
type OtFlowLoss =
    { Loss: Tensor
      Nll: Tensor
      Transport: Tensor
      Hjb: Tensor }

/// OT-Flow (Onken et al. 2021): a CNF whose velocity is −∇_xΦ(x, t) for the potential
/// `OtPotential`, so trajectories are straight-ish optimal-transport paths. The paper's map runs data
/// → base over [0, T]: here that is the inverse, and forward (base → data) runs from T back to 0.
/// log|det| integrates −tr(∇²_xΦ), computed exactly in closed form (no VJP per dimension). A
/// conditional OT-Flow's potential reads the context, Φ(x, t, c); c rides along in the solve with zero
/// derivative (`Cnf.solveConditioned`).
[<RequireQualifiedAccess>]
module OtFlow =

    /// Width 16, 2 layers, rank min(10, D) (set per dimension by `createWith`), T = 1, tolerance
    /// 1e-8, backpropagation.
    let defaults = { Width = 16; Layers = 2; Rank = 10; EndTime = 1.0; Tolerance = 1e-8; Gradient = CnfGradient.Backprop; ContextDim = 0 }

    /// The velocity −∇_xΦ of rows x at time t.
    let velocity (p: Params) (t: Tensor) (x: Tensor) =
        (fst (OtPotential.gradientAndTrace p t x)).narrow(1, 0, x.shape[1]) * -1.0

    /// The system [x; ℓ] for contexts c (None: unconditional): dx/dt = −∇_xΦ, dℓ/dt = −tr(∇²_xΦ).
    let system (p: Params) (c: Tensor option) : SystemDynamics =
        fun t state ->
            let gradient, trace = OtPotential.conditionalGradientAndTrace c p t state[0]
            [| -(gradient.narrow(1, 0, state[0].shape[1])); -trace |]

    /// The system [x; ℓ; L; R] with the transport cost ½‖∇_xΦ‖² and the HJB residual |∂_tΦ − ½‖∇_xΦ‖²|,
    /// for contexts c (None: unconditional).
    let regularisedSystem (p: Params) (c: Tensor option) : SystemDynamics =
        fun t state ->
            let dim = state[0].shape[1]
            let gradient, trace = OtPotential.conditionalGradientAndTrace c p t state[0]
            let gx = gradient.narrow(1, 0, dim)
            let kinetic = gx.square().sum(1) * 0.5
            [| -gx; -trace; kinetic; (gradient.narrow(1, dim, 1).squeeze(1) - kinetic).abs() |]

    // A solve of `system` from the start state with the rows' contexts, differentiated as `gradient` says.
    let private solveWith (observe: SolvePass -> Solution<Tensor[]> -> unit) (gradient: CnfGradient) (tolerance: float) (system: Params -> Tensor option -> SystemDynamics) (p: Params) (c: Tensor option) (start: Tensor[]) (t0: float) (t1: float) =
        Cnf.solveConditioned gradient observe (Cnf.solverFor start[0].dtype tolerance) SolverOptions.defaults system p c start t0 t1

    let private side (options: OtFlowOptions) (t0: float) (t1: float) : MapWithLogDet =
        fun p ctx x ->
            let c = Context.forLayer "ot-flow" options.ContextDim x.shape[0] ctx
            let final = solveWith (fun _ _ -> ()) options.Gradient options.Tolerance system p c [| x; Bijector.zeroLogDet x |] t0 t1
            final[0], final[1]

    /// An OT-Flow bijector on rows of dimension `dim` (the rank is capped at dim + 1), conditional when
    /// ContextDim > 0.
    let createWith (options: OtFlowOptions) (gen: Generator) (dtype: Dtype) (dim: int) =
        Cnf.checkOptions dim options.Tolerance options.EndTime
        let rank = min options.Rank (dim + 1)
        let settings =
            Settings.ofList
                [ "dim", Setting.Int dim
                  "width", Setting.Int options.Width
                  "layers", Setting.Int options.Layers
                  "rank", Setting.Int rank
                  "time", Setting.Float options.EndTime
                  "tolerance", Setting.Float options.Tolerance
                  "gradient", Setting.Text(match options.Gradient with CnfGradient.Backprop -> "backprop" | CnfGradient.Adjoint -> "adjoint")
                  "contextDim", Setting.Int options.ContextDim ]
        Bijector.create "ot-flow" settings [| dim |] (OtPotential.createConditional options.ContextDim gen dtype dim options.Width options.Layers rank)
            (side options options.EndTime 0.0) (side options 0.0 options.EndTime)

    /// The options an OT-Flow layer was made with, read from its settings.
    let optionsOf (settings: Settings) =
        let gradient =
            match Settings.text "gradient" settings with
            | "backprop" -> CnfGradient.Backprop
            | "adjoint" -> CnfGradient.Adjoint
            | other -> invalidArg (nameof settings) $"unknown OT-Flow gradient '{other}'"
        { Width = Settings.int "width" settings
          Layers = Settings.int "layers" settings
          Rank = Settings.int "rank" settings
          EndTime = Settings.float "time" settings
          Tolerance = Settings.float "tolerance" settings
          Gradient = gradient
          // models saved before conditional OT-Flow have no context
          ContextDim = (if settings.ContainsKey "contextDim" then Settings.int "contextDim" settings else 0) }

    /// Rebuilds from settings.
    let build (dtype: Dtype) (settings: Settings) =
        createWith (optionsOf settings) (Generator 0UL) dtype (Settings.int "dim" settings)

    /// `objective` for rows x with their contexts (`ctx`, checked against options.ContextDim) that
    /// hands each solve's cost to `observe` (for NFE counts; `Cnf.observer` makes one from a
    /// `CnfSolve` callback).
    let objectiveObserved (observe: SolvePass -> Solution<Tensor[]> -> unit) (options: OtFlowOptions) (weights: OtFlowWeights) (baseDistribution: Distribution) (p: Params) (ctx: Context) (x: Tensor) : OtFlowLoss =
        let c = Context.forLayer "ot-flow" options.ContextDim x.shape[0] ctx
        let zero = Bijector.zeroLogDet x
        let final = solveWith observe options.Gradient options.Tolerance regularisedSystem p c [| x; zero; zero; zero |] 0.0 options.EndTime
        let nll = -((baseDistribution.LogProb baseDistribution.Params final[0] + final[1]).mean())
        let transport, hjb = final[2].mean(), final[3].mean()
        { Loss = nll + transport * weights.Transport + hjb * weights.Hjb
          Nll = nll
          Transport = transport
          Hjb = hjb }

    /// OT-Flow's objective for data rows x: integrate [x; ℓ; L; R] over [0, T] with the parameters
    /// of an OT-Flow bijector made with `options`, and return E[−log p_base(z(T)) − ℓ(T)] + α_L·E[L]
    /// + α_R·E[R] with its parts. The HJB integrand has kinks where its residual changes sign, so
    /// with α_R > 0 adjoint gradients match backpropagation only to about 1e-3 relative.
    let objective (options: OtFlowOptions) (weights: OtFlowWeights) (baseDistribution: Distribution) (p: Params) (x: Tensor) : OtFlowLoss =
        objectiveObserved (fun _ _ -> ()) options weights baseDistribution p Context.none x

    // The catalogue's layer: small, over T = 1/2, at 1e-7, cheap enough for the law suite's
    // plane integral.
    let private catalogueOptions = { defaults with Width = 4; Rank = 2; EndTime = 0.5; Tolerance = 1e-7 }

    let private entryFor (name: string) (options: OtFlowOptions) =
        { Entry.exact name build (createWith options) with
            InverseKind = InverseKind.Iterative options.Tolerance }

    /// The catalogue entry: Dopri5 at 1e-7.
    [<CatalogueEntry>]
    let entry = entryFor "ot-flow" catalogueOptions
