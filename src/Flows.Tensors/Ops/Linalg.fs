namespace Flows.Tensors

/// Triangular solves, LU, log-determinants and inverses (batched over leading dimensions).
[<AutoOpen>]
module Linalg =

    let private checkSquare (op: string) (a: Tensor) =
        if not (a.dim >= 2 && a.shape[a.dim - 1] = a.shape[a.dim - 2]) then Shape.fail op ($"expected square matrices [..., n, n], got {Shape.show a.shape}")

    type Tensor with
        /// Solves op(A) X = B for triangular A (this), B of shape [..., n, k]. The adjoint of B is
        /// another triangular solve with the transpose; A's adjoint is kept on its triangle.
        member a.solveTriangular(b: Tensor, upper: bool, ?transpose: bool, ?unitDiagonal: bool) =
            let transpose = defaultArg transpose false
            let unit = defaultArg unitDiagonal false
            checkSquare "solveTriangular" a
            Tensor.Same("solveTriangular", a, b)
            if not (b.dim >= 2 && b.shape[b.dim - 2] = a.shape[a.dim - 1]) then Shape.fail "solveTriangular" ($"right-hand side {Shape.show b.shape} does not match matrix {Shape.show a.shape}")
            Tensor.Lift(
                [| a; b |],
                (fun r -> r[0].SolveTriangular(r[1], upper, transpose, unit)),
                fun p x adj i ->
                    let m = p[0]
                    let gb = m.solveTriangular(adj, upper, not transpose, unit)
                    if i = 1 then gb.sumTo p[1].shape
                    else
                        // d op(A) = -gB Xᵀ, restricted to the stored triangle (off the diagonal if unit).
                        let gOp = -(gb.matmul(x.transpose()))
                        let gA = if transpose then gOp.transpose() else gOp
                        let kept = if upper then gA.triu(if unit then 1 else 0) else gA.tril(if unit then -1 else 0)
                        kept.sumTo m.shape)

        /// LU with partial pivoting of square matrices: (packed LU, pivot rows as int32, sign).
        /// No derivative; slogdet and inverse below carry their own.
        member a.lu() =
            checkSquare "lu" a
            let lu, perm, sign = a.Raw.Lu()
            Tensor lu, Tensor perm, Tensor sign

        /// Inverse of square matrices (LU solve); differentiates as −A⁻ᵀ adj A⁻ᵀ.
        member a.inverse() : Tensor =
            checkSquare "inverse" a
            let n = a.shape[a.dim - 1]
            let compute (m: Tensor) =
                let lu, perm, _ = m.lu()
                let eye = Tensor.eye(n, m.dtype, m.device).expand m.shape
                // P A = L U, so A⁻¹ = U⁻¹ L⁻¹ P: solve against the permuted identity.
                let permuted = eye.gather(m.dim - 2, perm.unsqueeze(-1).expand m.shape)
                let y = lu.solveTriangular(permuted, false, unitDiagonal = true)
                lu.solveTriangular(y, true)
            Tensor.Lift1(a, (fun r -> (compute (Tensor r)).Raw), fun _ y adj ->
                let yt = y.transpose()
                -(yt.matmul(adj).matmul yt))

        /// Sign and log|det| of square matrices via LU; log|det| differentiates to A^-T.
        member a.slogdet() =
            checkSquare "slogdet" a
            let lu, _, sign = a.noDiff().lu()
            let diag = lu.diagonal()
            let signs = diag.sign().unstack(-1) |> Array.fold (fun (acc: Tensor) s -> acc * s) sign
            let logAbs =
                Tensor.Lift1(a, (fun _ -> diag.abs().log().sum(-1).Raw), fun (x: Tensor) _ adj ->
                    adj.unsqueeze(-1).unsqueeze(-1) * x.inverse().transpose())
            signs, logAbs
