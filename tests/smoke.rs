mod common;
use edgerl::gpu::{Recorder, Tensor};

#[test]
fn matmul_smoke() {
    for gpu in common::all_gpus() {
        let (t, k, n) = (3, 5, 7);
        let mut rng = common::Rng::new(1);
        let x = rng.vec(t * k);
        let w = rng.vec(n * k);
        let xb = gpu.upload(bytemuck::cast_slice(&x), "x").unwrap();
        let wt = Tensor::from_f32(gpu, "w", n, k, &w).unwrap();
        let y = gpu.alloc((t * n * 4) as u64, "y").unwrap();
        let mut r = Recorder::new(gpu);
        r.linear(&xb, t, &wt, None, &y, false).unwrap();
        r.submit().unwrap();
        let got = gpu.read_f32(&y, t * n).unwrap();
        let mut want = vec![0f32; t * n];
        for i in 0..t { for j in 0..n { want[i*n+j] = (0..k).map(|q| x[i*k+q]*w[j*k+q]).sum(); } }
        eprintln!("{} {} pieces={}", gpu.adapter.backend, gpu.adapter.name, wt.pieces.len());
        common::assert_close("matmul", &got, &want, 1e-5, 1e-5);
    }
}
