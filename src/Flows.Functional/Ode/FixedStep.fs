namespace Flows.Ode

open Flows.Tensors

/// The fixed-step solvers: `steps` equal steps from t0 to t1 (negative steps when t1 < t0), each
/// costing one evaluation per stage. States at output times between grid points come from the
/// cubic Hermite interpolant through the neighbouring grid states and their derivatives (the
/// first stages of the two steps), so only an output strictly inside the last step costs an extra
/// evaluation, f(t1, y1). The state is checked for NaN and infinity after every step.
[<RequireQualifiedAccess>]
module FixedStep =

    /// Forward Euler: y + h·f(t, y).
    let euler = { Name = "Euler"; Order = 1; C = [| 0.0 |]; A = [| [||] |]; B = [| 1.0 |] }

    /// The explicit midpoint rule: y + h·f(t + h/2, y + h/2·f(t, y)).
    let midpoint = { Name = "Midpoint"; Order = 2; C = [| 0.0; 0.5 |]; A = [| [||]; [| 0.5 |] |]; B = [| 0.0; 1.0 |] }

    /// The classical fourth-order Runge–Kutta method (weights 1/6, 1/3, 1/3, 1/6).
    let rk4 =
        { Name = "Rk4"
          Order = 4
          C = [| 0.0; 0.5; 0.5; 1.0 |]
          A = [| [||]; [| 0.5 |]; [| 0.0; 0.5 |]; [| 0.0; 0.0; 1.0 |] |]
          B = [| 1.0 / 6.0; 1.0 / 3.0; 1.0 / 3.0; 1.0 / 6.0 |] }

    /// Integrates `f` from (t0, y0) to t1 in `steps` equal steps of `tableau` (t0 ≠ t1, `steps` ≥ 1,
    /// output times ordered from t0 towards t1 inside [t0, t1]: the caller checks).
    let integrate (tableau: Tableau) (steps: int) (f: SystemDynamics) (y0: Tensor[]) (t0: float) (t1: float) (outputTimes: float[]) : Solution<Tensor[]> =
        let nfe = ref 0
        let eval (t: float) (y: Tensor[]) =
            nfe.Value <- nfe.Value + 1
            f (RungeKutta.time y0 t) y
        let failAt (t: float) = raise (OdeException(OdeFailure.NonFiniteState t))
        let h = (t1 - t0) / float steps
        let direction = if t1 > t0 then 1.0 else -1.0
        // the last grid point is t1 itself, not t0 + steps·h with its rounding
        let gridTime (n: int) = if n = steps then t1 else t0 + float n * h
        let outputs = Array.zeroCreate outputTimes.Length
        let next = ref 0
        // Fills the outputs up to tb, which lie in (ta, tb] once earlier ones are filled: tb itself is
        // the grid state, a time inside is interpolated (fb is the derivative at tb, asked only then).
        let resolve (ta: float) (ya: Tensor[]) (fa: Tensor[]) (tb: float) (yb: Tensor[]) (fb: unit -> Tensor[]) =
            while next.Value < outputTimes.Length && direction * (outputTimes[next.Value] - tb) <= 0.0 do
                let tau = outputTimes[next.Value]
                outputs[next.Value] <-
                    if tau = tb then yb
                    elif tau = ta then ya
                    else RungeKutta.hermite ya fa yb (fb ()) (tb - ta) ((tau - ta) / (tb - ta))
                next.Value <- next.Value + 1
        if not (RungeKutta.allFinite y0) then failAt t0
        while next.Value < outputTimes.Length && outputTimes[next.Value] = t0 do
            outputs[next.Value] <- y0
            next.Value <- next.Value + 1
        let mutable y = y0
        let mutable previous = None
        for n in 0 .. steps - 1 do
            let tn = gridTime n
            let k1 = eval tn y
            match previous with
            | Some(tp, yp, fp) -> resolve tp yp fp tn y (fun () -> k1)
            | None -> ()
            let ks = RungeKutta.stages tableau eval tn h y k1
            let y1 = RungeKutta.combine y h tableau.B ks
            if not (RungeKutta.allFinite y1) then failAt (gridTime (n + 1))
            previous <- Some(tn, y, k1)
            y <- y1
        match previous with
        | Some(tl, yl, fl) ->
            let final = y
            let atEnd = lazy (eval t1 final)
            resolve tl yl fl t1 final (fun () -> atEnd.Force())
        | None -> ()
        { Final = y
          Outputs = outputs
          Times = outputTimes
          Nfe = nfe.Value
          Accepted = steps
          Rejected = 0 }
