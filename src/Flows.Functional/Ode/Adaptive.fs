namespace Flows.Ode

open Flows.Tensors

/// An embedded 5(4) Runge–Kutta pair with the FSAL property: `Tableau` holds stages 1 to 6 and the
/// fifth-order weights B; stage 7 is f(t + h, y1), which is also the next step's first stage.
type EmbeddedPair =
    { Tableau: Tableau
      /// b_i − b̂_i over the seven stages: h·Σ E_i·k_i estimates the local error of the embedded
      /// fourth-order solution, which bounds that of the fifth-order one that is propagated.
      Error: float[]
      /// θ ↦ the seven weights b_i(θ) of the dense output y(t + θh) = y + h·Σ b_i(θ)·k_i, θ in [0, 1].
      Interpolant: float -> float[] }

/// The adaptive solvers: Dormand–Prince 5(4) and Tsitouras 5(4), the error ratio (max or RMS measure), the
/// step-size controller, Hairer's first-step rule and the integration loop with dense output.
/// Step-size decisions read detached values; the state is advanced with tensor ops only.
[<RequireQualifiedAccess>]
module Adaptive =

    /// Dormand & Prince (1980) 5(4), with Shampine's (1986) fourth-order dense output written as
    /// stage weights (Hairer, Nørsett & Wanner, Solving ODEs I, §II.6; their dopri5.f contd5).
    let dopri5 =
        let b = [| 35.0 / 384.0; 0.0; 500.0 / 1113.0; 125.0 / 192.0; -2187.0 / 6784.0; 11.0 / 84.0; 0.0 |]
        let d =
            [| -12715105075.0 / 11282082432.0; 0.0; 87487479700.0 / 32700410799.0; -10690763975.0 / 1880347072.0
               701980252875.0 / 199316789632.0; -1453857185.0 / 822651844.0; 69997945.0 / 29380423.0 |]
        let e1 = Array.init 7 (fun i -> if i = 0 then 1.0 else 0.0)
        let e7 = Array.init 7 (fun i -> if i = 6 then 1.0 else 0.0)
        // contd5: y + θ·Δ + θ(1−θ)·(h·k1 − Δ + θ·(Δ − h·k7 − (h·k1 − Δ) + (1−θ)·h·Σ d_i k_i)), Δ = h·Σ b_i k_i
        let interpolant (theta: float) =
            Array.init 7 (fun i ->
                let inner = 2.0 * b[i] - e1[i] - e7[i] + (1.0 - theta) * d[i]
                theta * b[i] + theta * (1.0 - theta) * (e1[i] - b[i] + theta * inner))
        { Tableau =
            { Name = "Dopri5"
              Order = 5
              C = [| 0.0; 1.0 / 5.0; 3.0 / 10.0; 4.0 / 5.0; 8.0 / 9.0; 1.0 |]
              A =
                [| [||]
                   [| 1.0 / 5.0 |]
                   [| 3.0 / 40.0; 9.0 / 40.0 |]
                   [| 44.0 / 45.0; -56.0 / 15.0; 32.0 / 9.0 |]
                   [| 19372.0 / 6561.0; -25360.0 / 2187.0; 64448.0 / 6561.0; -212.0 / 729.0 |]
                   [| 9017.0 / 3168.0; -355.0 / 33.0; 46732.0 / 5247.0; 49.0 / 176.0; -5103.0 / 18656.0 |] |]
              B = b[0..5] }
          Error = [| 71.0 / 57600.0; 0.0; -71.0 / 16695.0; 71.0 / 1920.0; -17253.0 / 339200.0; 22.0 / 525.0; -1.0 / 40.0 |]
          Interpolant = interpolant }

    /// Tsitouras (2011) 5(4), "Runge–Kutta pairs of order 5(4) satisfying only the first column
    /// simplifying assumption", with its free fourth-order interpolant; the coefficients are those
    /// of OrdinaryDiffEq.jl's Tsit5 (b_i(θ) = r_i1·θ + r_i2·θ² + r_i3·θ³ + r_i4·θ⁴).
    let tsit5 =
        let r =
            [| [| 1.0; -2.763706197274826; 2.9132554618219126; -1.0530884977290216 |]
               [| 0.0; 0.13169999999999998; -0.2234; 0.1017 |]
               [| 0.0; 3.9302962368947516; -5.941033872131505; 2.490627285651253 |]
               [| 0.0; -12.411077166933676; 30.33818863028232; -16.548102889244902 |]
               [| 0.0; 37.50931341651104; -88.1789048947664; 47.37952196281928 |]
               [| 0.0; -27.896526289197286; 65.09189467479366; -34.87065786149661 |]
               [| 0.0; 1.5; -4.0; 2.5 |] |]
        let interpolant (theta: float) =
            r |> Array.map (fun c -> theta * (c[0] + theta * (c[1] + theta * (c[2] + theta * c[3]))))
        { Tableau =
            { Name = "Tsit5"
              Order = 5
              C = [| 0.0; 0.161; 0.327; 0.9; 0.9800255409045097; 1.0 |]
              A =
                [| [||]
                   [| 0.161 |]
                   [| -0.008480655492356989; 0.335480655492357 |]
                   [| 2.8971530571054935; -6.359448489975075; 4.3622954328695815 |]
                   [| 5.325864828439257; -11.748883564062828; 7.4955393428898365; -0.09249506636175525 |]
                   [| 5.86145544294642; -12.92096931784711; 8.159367898576159; -0.071584973281401; -0.028269050394068383 |] |]
              B = [| 0.09646076681806523; 0.01; 0.4798896504144996; 1.379008574103742; -3.290069515436081; 2.324710524099774 |] }
          Error =
            [| -0.00178001105222577714; -0.0008164344596567469; 0.007880878010261995; -0.1447110071732629
               0.5823571654525552; -0.45808210592918697; 0.015151515151515152 |]
          Interpolant = interpolant }

    // The gap between 1 and the next double (System.Double.Epsilon is the smallest subnormal instead).
    let private machineEpsilon = 2.220446049250313e-16

    let private controlled (norm: ErrorNorm) (count: int) =
        match norm with
        | ErrorNorm.All -> List.init count id
        | ErrorNorm.Only indices -> indices

    // |x| / scale over the controlled tensors, measured per tensor (largest element or root mean
    // square) and the largest over tensors; NaN anywhere reads as infinity.
    let private scaledNorm (measure: ErrorMeasure) (norm: ErrorNorm) (scale: int -> Tensor) (x: Tensor[]) =
        controlled norm x.Length
        |> List.filter (fun i -> x[i].numel > 0)
        |> List.fold
            (fun acc i ->
                let r = x[i].noDiff().abs() / scale i
                let r = Tensor.where(r.isnan(), r.fullLike infinity, r)
                let size =
                    match measure with
                    | ErrorMeasure.Max -> r.max().toScalar()
                    | ErrorMeasure.RootMeanSquare -> sqrt ((r * r).mean().toScalar())
                max acc size)
            0.0

    /// The error ratio: |err| / (atol + rtol·max(|y0|, |y1|)) over the controlled elements, measured as `measure` says; the
    /// step is accepted when it is at most 1. A non-finite y1 or err gives infinity.
    let errorRatio (tolerances: Tolerances) (measure: ErrorMeasure) (norm: ErrorNorm) (y0: Tensor[]) (y1: Tensor[]) (err: Tensor[]) : float =
        let scale i =
            let a, b = y0[i].noDiff(), y1[i].noDiff()
            // b·0 is NaN where y1 is infinite or NaN, so such a state is never accepted
            a.abs().max(b.abs()) * tolerances.Rtol + tolerances.Atol + b * 0.0
        scaledNorm measure norm scale err

    /// The factor of the next step: min(10, max(0.1, 0.9·ratio^(−1/5))), the exponent of a pair whose
    /// error estimate is of order 4; 10 for a zero ratio and 0.1 for a non-finite one.
    let stepFactor (ratio: float) =
        if ratio = 0.0 then 10.0
        elif not (System.Double.IsFinite ratio) then 0.1
        else min 10.0 (max 0.1 (0.9 * System.Math.Pow(ratio, -0.2)))

    /// Hairer's first step (Solving ODEs I, §II.4), with the same measure: h0 = 0.01·|y0|/|f0| in units of
    /// the tolerance, one Euler step to estimate the second derivative, then the step whose
    /// fifth-order term would be 0.01, at most 100·h0 and the interval. Costs one evaluation.
    let initialStep (tolerances: Tolerances) (measure: ErrorMeasure) (norm: ErrorNorm) (f: float -> Tensor[] -> Tensor[]) (t0: float) (t1: float) (y0: Tensor[]) (f0: Tensor[]) =
        let span = abs (t1 - t0)
        let direction = if t1 > t0 then 1.0 else -1.0
        let y0 = y0 |> Array.map _.noDiff()
        let f0 = f0 |> Array.map _.noDiff()
        let scale i = y0[i].abs() * tolerances.Rtol + tolerances.Atol
        let d0, d1 = scaledNorm measure norm scale y0, scaledNorm measure norm scale f0
        let h0 = if d0 < 1e-5 || d1 < 1e-5 then 1e-6 else 0.01 * d0 / d1
        let h0 = min h0 span
        let f1 = f (t0 + direction * h0) (RungeKutta.combine y0 (direction * h0) [| 1.0 |] [| f0 |]) |> Array.map _.noDiff()
        let d2 = scaledNorm measure norm scale (Array.map2 (fun (a: Tensor) b -> a - b) f1 f0) / h0
        let h1 =
            if not (System.Double.IsFinite d2) then h0
            elif max d1 d2 <= 1e-15 then max 1e-6 (h0 * 1e-3)
            else System.Math.Pow(0.01 / max d1 d2, 0.2)
        min (min (100.0 * h0) h1) span

    /// Integrates `f` from (t0, y0) to t1 with `pair` under `tolerances` (t0 ≠ t1; output times
    /// ordered from t0 towards t1 inside [t0, t1]: the caller checks). Raises OdeException on a
    /// non-finite start, a step size underflow, or MaxSteps attempted steps.
    let integrate (pair: EmbeddedPair) (tolerances: Tolerances) (options: SolverOptions) (f: SystemDynamics) (y0: Tensor[]) (t0: float) (t1: float) (outputTimes: float[]) : Solution<Tensor[]> =
        let nfe = ref 0
        let eval (t: float) (y: Tensor[]) =
            nfe.Value <- nfe.Value + 1
            f (RungeKutta.time y0 t) y
        let fail failure = raise (OdeException failure)
        let direction = if t1 > t0 then 1.0 else -1.0
        let outputs = Array.zeroCreate outputTimes.Length
        let mutable next = 0
        while next < outputTimes.Length && outputTimes[next] = t0 do
            outputs[next] <- y0
            next <- next + 1
        let mutable k1 = eval t0 y0
        if not (RungeKutta.allFinite y0 && RungeKutta.allFinite k1) then fail (OdeFailure.NonFiniteState t0)
        let mutable h =
            match options.FirstStep with
            | Some h -> min h (abs (t1 - t0))
            | None -> initialStep tolerances options.ErrorMeasure options.ErrorNorm eval t0 t1 y0 k1
        let mutable t = t0
        let mutable y = y0
        let mutable accepted = 0
        let mutable rejected = 0
        let mutable ratio = 0.0
        while t <> t1 do
            if accepted + rejected >= options.MaxSteps then fail (OdeFailure.MaxStepsExceeded(t, options.MaxSteps))
            // Hairer's test: a step within 10 ulps of t cannot be resolved (it rounds to whole ulps, so
            // a rejected one may come back unchanged forever); below MinStep, unless t1 cut it short
            if h <= 10.0 * machineEpsilon * abs t || t + direction * h = t || (h < options.MinStep && h < abs (t1 - t)) then fail (OdeFailure.StepSizeUnderflow(t, direction * h, ratio))
            let last = h >= abs (t1 - t)
            let tNew = if last then t1 else t + direction * h
            let hs = tNew - t
            let ks = RungeKutta.stages pair.Tableau eval t hs y k1
            let y1 = RungeKutta.combine y hs pair.Tableau.B ks
            let k7 = eval tNew y1
            let stages = Array.append ks [| k7 |]
            let detached = stages |> Array.map (Array.map _.noDiff())
            ratio <- errorRatio tolerances options.ErrorMeasure options.ErrorNorm y y1 (RungeKutta.increment hs pair.Error detached)
            if ratio <= 1.0 then
                while next < outputTimes.Length && direction * (outputTimes[next] - tNew) <= 0.0 do
                    let tau = outputTimes[next]
                    outputs[next] <- if tau = tNew then y1 else RungeKutta.combine y hs (pair.Interpolant((tau - t) / hs)) stages
                    next <- next + 1
                t <- tNew
                y <- y1
                k1 <- k7
                accepted <- accepted + 1
            else rejected <- rejected + 1
            h <- abs hs * stepFactor ratio
        { Final = y
          Outputs = outputs
          Times = outputTimes
          Nfe = nfe.Value
          Accepted = accepted
          Rejected = rejected }
