using TorchSharp;
using static TorchSharp.torch;

/// <summary>bench/Bench's HexagonCnf step as FFJORD + torchdiffeq run it (bench/reference/hexagon_cnf_torchdiffeq.py):
/// dynamics MLP [z; t] 3→64→64→64→2 with tanh; log p(x) = log N(z(0)) + ∫₁⁰ tr(∂f/∂z) dt with the exact
/// trace (one autograd call per dimension, create_graph); Dopri5 at rtol = atol = 1e-4; gradients by the
/// adjoint method as odeint_adjoint takes them: the forward solve keeps no graph, the backward solve
/// integrates [z, Δ, a_z, a_Δ, a_θ] from 0 back to 1 with vector-Jacobian products from autograd.grad;
/// AdamW 2e-3, weight decay 1e-5. Float32, as ours. The parameters start from given values (ours).</summary>
sealed class HexagonCnf : nn.Module
{
    private const double Tolerance = 1e-4;
    private readonly nn.Module<Tensor, Tensor> net;
    private readonly Tensor[] theta;
    private readonly optim.Optimizer optimiser;

    /// <summary>Evaluations of the last forward solve and of the last backward (adjoint) solve.</summary>
    public int NfeForward { get; private set; }
    public int NfeBackward { get; private set; }

    /// <param name="initial">weight [out, in] then bias of each linear layer in turn, as our Params hold them.</param>
    public HexagonCnf(float[] initial) : base(nameof(HexagonCnf))
    {
        net = nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2));
        register_module("net", net);
        theta = net.parameters().ToArray<Tensor>();
        int at = 0;
        using (no_grad())
            foreach (var p in theta)
            {
                p.copy_(tensor(initial[at..(at + (int)p.numel())]).reshape(p.shape));
                at += (int)p.numel();
            }
        if (at != initial.Length) throw new ArgumentException($"expected {at} initial weights, got {initial.Length}");
        optimiser = optim.AdamW(parameters(), lr: 2e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-5);
    }

    // f(t, z) and tr(∂f/∂z) as FFJORD's exact trace takes it; z must require grad. TorchSharp's retain_graph
    // does not default to create_graph as PyTorch's does, so both are passed.
    private (Tensor Dz, Tensor Trace) Field(double t, Tensor z)
    {
        var dz = net.call(cat(new[] { z, full(new[] { z.shape[0], 1L }, t, dtype: z.dtype) }, 1));
        Tensor trace = zeros(z.shape[0]);
        for (int i = 0; i < z.shape[1]; i++)
            trace = trace + autograd.grad(new[] { dz[.., i].sum() }, new[] { z }, retain_graph: true, create_graph: true)[0][.., i];
        return (dz, trace);
    }

    // d[z, Δ]/dt for the forward solve, detached; each evaluation's graph is freed with its scope.
    private Tensor[] Dynamics(double t, Tensor[] state)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var (dz, trace) = Field(t, state[0].detach().requires_grad_(true));
        return new[] { dz.detach().MoveToOuterDisposeScope(), trace.detach().MoveToOuterDisposeScope() };
    }

    // d[z, Δ, a_z, a_Δ, a_θ]/dt = [f, tr, −a·∂[f, tr]/∂z, 0, −a·∂[f, tr]/∂θ] (Δ is no input of the field).
    private Tensor[] Augmented(double t, Tensor[] state)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var z = state[0].detach().requires_grad_(true);
        var (dz, trace) = Field(t, z);
        var vjps = autograd.grad(new[] { dz, trace }, theta.Prepend(z).ToArray(), new[] { -state[2], -state[3] });
        var derivatives = new[] { dz.detach(), trace.detach(), vjps[0], zeros_like(state[3]) }.Concat(vjps.Skip(1));
        return derivatives.Select(d => d.MoveToOuterDisposeScope()).ToArray();
    }

    // −mean log N(z; 0, I) − mean Δ, the negative log-likelihood of the batch.
    private static Tensor Loss(Tensor z, Tensor delta) =>
        (0.5 * (z.square().sum(1) + 2 * Math.Log(2 * Math.PI)) - delta).mean();

    private (Tensor Z, Tensor Delta) Solve(Tensor x)
    {
        using var _ = no_grad();
        var (final, nfe) = Dopri5.Solve(Dynamics, new[] { x, zeros(x.shape[0]) }, 1.0, 0.0, Tolerance, Tolerance);
        NfeForward = nfe;
        return (final[0], final[1]);
    }

    /// <summary>The mean negative log-likelihood of the rows x, no gradients.</summary>
    public double Nll(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (z, delta) = Solve(x);
        return Loss(z, delta).item<float>();
    }

    /// <summary>One AdamW step on the batch x; the loss before the step comes back.</summary>
    public double Step(Tensor x)
    {
        using var scope = NewDisposeScope();
        optimiser.zero_grad();
        var (z, delta) = Solve(x);
        // the loss's gradients at the solve's end start the adjoint
        z.requires_grad_(true);
        delta.requires_grad_(true);
        var loss = Loss(z, delta);
        var adjoints = autograd.grad(new[] { loss }, new[] { z, delta });
        using (no_grad())
        {
            var start = new[] { z.detach(), delta.detach(), adjoints[0], adjoints[1] }.Concat(theta.Select(p => zeros_like(p))).ToArray();
            var (final, nfe) = Dopri5.Solve(Augmented, start, 0.0, 1.0, Tolerance, Tolerance);
            NfeBackward = nfe;
            for (int i = 0; i < theta.Length; i++) theta[i].grad = final[4 + i].MoveToOuterDisposeScope();
        }
        optimiser.step();
        return loss.item<float>();
    }
}
