//! A 1-D convolution over time for `[B, T, C]` tensors, written as shifted
//! copies plus a linear layer (im2col). candle 0.11's own `conv1d` computes a
//! wrong kernel gradient (checked against finite differences), so training
//! code here uses this instead: only ops whose gradients are right.

use candle_core::{Result, Tensor, D};
use candle_nn::{Module, VarBuilder};

/// Convolution with an odd kernel, "same" zero padding, stride 1.
pub struct TimeConv {
    linear: candle_nn::Linear,
    kernel: usize,
}

impl TimeConv {
    /// `input` channels to `output` channels over `kernel` steps.
    pub fn new(input: usize, output: usize, kernel: usize, vb: VarBuilder) -> Result<Self> {
        Ok(TimeConv {
            linear: candle_nn::linear(input * kernel, output, vb)?,
            kernel: kernel.max(1) | 1,
        })
    }
}

impl Module for TimeConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let t = x.dim(1)?;
        let half = self.kernel / 2;
        let padded = x.pad_with_zeros(1, half, half)?;
        let shifted: Vec<Tensor> = (0..self.kernel)
            .map(|k| padded.narrow(1, k, t))
            .collect::<Result<_>>()?;
        self.linear.forward(&Tensor::cat(&shifted, D::Minus1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let conv = TimeConv::new(3, 2, 3, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        let x = Tensor::from_vec(
            (0..30)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                .collect::<Vec<_>>(),
            (2, 5, 3),
            &dev,
        )
        .unwrap();
        let loss = |c: &TimeConv| c.forward(&x).unwrap().sqr().unwrap().mean_all().unwrap();
        let w: Var = vm.data().lock().unwrap().get("weight").unwrap().clone();
        let grads = loss(&conv).backward().unwrap();
        let analytic = grads
            .get(w.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = w
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for idx in [0, 4, 11, 17] {
            let mut v = base.clone();
            let eps = 1e-2;
            v[idx] += eps;
            w.set(&Tensor::from_vec(v.clone(), w.shape(), &dev).unwrap())
                .unwrap();
            let plus = loss(&conv).to_scalar::<f32>().unwrap();
            v[idx] -= 2.0 * eps;
            w.set(&Tensor::from_vec(v, w.shape(), &dev).unwrap())
                .unwrap();
            let minus = loss(&conv).to_scalar::<f32>().unwrap();
            w.set(&Tensor::from_vec(base.clone(), w.shape(), &dev).unwrap())
                .unwrap();
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                (numeric - analytic[idx]).abs() < 1e-3,
                "{idx}: {numeric} vs {}",
                analytic[idx]
            );
        }
    }
}
