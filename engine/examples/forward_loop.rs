//! Profiling harness: `forward_loop MODEL SECONDS [portable]` runs the forward
//! pass over whole contexts and prints tokens per second.
use kantor_engine::kernels::Isa;
use kantor_engine::model::Model;
use kantor_engine::session::{Session, SessionOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("model");
    let seconds: f64 = args.get(2).map_or(2.0, |s| s.parse().expect("seconds"));
    let model = Model::from_bytes(&bytes).expect("load");
    let mut options = SessionOptions::for_model(&model);
    if args.get(3).is_some_and(|a| a == "portable") {
        options.isa = Isa::Portable;
    }
    let mut memory = vec![0u8; Session::memory_required(&model, options)];
    let mut session = Session::new(&model, options, &mut memory).expect("session");
    let start = std::time::Instant::now();
    let mut tokens = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        session.reset();
        for t in 0..model.config.context {
            session.forward((t % 300) as u16).expect("forward");
        }
        tokens += model.config.context as u64;
    }
    println!(
        "{:?}: {:.0} tokens/s",
        options.isa,
        tokens as f64 / start.elapsed().as_secs_f64()
    );
}
