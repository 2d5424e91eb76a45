//! AdamW with decoupled weight decay, written out so its state (the moments)
//! can be checkpointed and restored exactly — candle's own keeps it private.

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

/// One parameter and its moments.
#[derive(Debug)]
pub struct Param {
    /// Variable name (the engine's tensor name).
    pub name: String,
    /// The variable.
    pub var: Var,
    /// First moment.
    pub m: Tensor,
    /// Second moment.
    pub v: Tensor,
}

/// The optimizer.
#[derive(Debug)]
pub struct AdamW {
    /// Parameters, sorted by name.
    pub params: Vec<Param>,
    /// Steps taken (for bias correction).
    pub steps: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    /// An optimizer over named variables, with zero moments.
    pub fn new(mut vars: Vec<(String, Var)>, weight_decay: f64) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.as_tensor().zeros_like()?;
                let v = var.as_tensor().zeros_like()?;
                Ok(Param { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            params,
            steps: 0,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Restore moments saved as `adamw.m.NAME` / `adamw.v.NAME`.
    pub fn restore(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        steps: usize,
    ) -> Result<()> {
        for p in &mut self.params {
            let m = tensors
                .get(&format!("adamw.m.{}", p.name))
                .with_context(|| format!("checkpoint lacks the optimizer moment of {}", p.name))?;
            let v = tensors
                .get(&format!("adamw.v.{}", p.name))
                .with_context(|| format!("checkpoint lacks the optimizer moment of {}", p.name))?;
            p.m = m.to_device(p.var.device())?;
            p.v = v.to_device(p.var.device())?;
        }
        self.steps = steps;
        Ok(())
    }

    /// The moments to save, with their names.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| {
                [
                    (format!("adamw.m.{}", p.name), p.m.clone()),
                    (format!("adamw.v.{}", p.name), p.v.clone()),
                ]
            })
            .collect()
    }

    /// Sum of gradients over micro-batches: add `grads` into `acc`.
    pub fn accumulate(&self, acc: &mut Vec<Option<Tensor>>, grads: &GradStore) -> Result<()> {
        acc.resize(self.params.len(), None);
        for (slot, p) in acc.iter_mut().zip(&self.params) {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                // Gradients are data here: where candle keeps their graph
                // (the GAN's gradient penalty), the moments must not chain
                // every step's graph to the next.
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(sum) => (sum + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(grads: &[Option<Tensor>]) -> Result<f64> {
        let mut total = 0.0f64;
        for g in grads.iter().flatten() {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
        Ok(total.sqrt())
    }

    /// One update with learning rate `lr`, gradients scaled by `grad_scale`
    /// (gradient clipping). Weight decay applies to matrices only.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64, grad_scale: f64) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        let correction1 = 1.0 - self.beta1.powi(t);
        let correction2 = 1.0 - self.beta2.powi(t);
        for (p, g) in self.params.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            let g = (g * grad_scale)?;
            p.m = ((&p.m * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            p.v = ((&p.v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&p.m / correction1)? / ((&p.v / correction2)?.sqrt()? + self.eps)?)?;
            let theta = p.var.as_tensor();
            let decayed = if theta.rank() >= 2 {
                (theta * (1.0 - lr * self.weight_decay))?
            } else {
                theta.clone()
            };
            p.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Learning rate at `step`: linear warm-up, then cosine decay to `min` at `total`.
pub fn learning_rate(step: usize, warmup: usize, total: usize, peak: f64, min: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    min + 0.5 * (peak - min) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_the_minimum() {
        assert!((learning_rate(0, 10, 100, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 10, 100, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(10, 10, 100, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(100, 10, 100, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!(learning_rate(55, 10, 100, 1.0, 0.1) < 0.6);
    }

    #[test]
    fn minimises_a_quadratic() -> Result<()> {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu)?;
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], 0.0)?;
        for _ in 0..300 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            let mut acc = Vec::new();
            opt.accumulate(&mut acc, &loss.backward()?)?;
            opt.step(&acc, 0.05, 1.0)?;
        }
        let v = x.as_tensor().to_vec1::<f32>()?;
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
        assert_eq!(opt.state_tensors().len(), 2);
        Ok(())
    }
}
