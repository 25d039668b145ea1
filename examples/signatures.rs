//! The physical limit of the token endpoint for `bench/run.sh`: how many raw JWS signatures per
//! second this machine makes with the library frontdoor signs with (aws-lc-rs), RSA-2048
//! PKCS#1 v1.5 (RS256) and ECDSA P-256 (ES256), on THREADS threads (default: every CPU, as
//! frontdoor's workers). A grant should cost little beyond its signature: the report divides
//! the grant rows by these. Prints one JSON object.
//!
//! `cargo run --release --example signatures -- [SECONDS] [THREADS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rsa::pkcs8::EncodePrivateKey;

/// What a signature covers in a grant: a JWS signing input of an access token's size.
const MESSAGE: &[u8] = &[b'x'; 420];

fn rate(seconds: f64, threads: usize, sign: Arc<dyn Fn() + Send + Sync>) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, sign) = (stop.clone(), count.clone(), sign.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sign();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let threads: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("an RSA-2048 key");
    let rsa_der = rsa_key.to_pkcs8_der().expect("PKCS#8");
    let rsa = Arc::new(RsaKeyPair::from_pkcs8(rsa_der.as_bytes()).expect("RSA key pair"));
    let rng = SystemRandom::new();
    let ec_der =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
    let ec = Arc::new(
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_der.as_ref())
            .expect("P-256 key pair"),
    );

    let rs256 = rate(
        seconds,
        threads,
        Arc::new(move || {
            let mut signature = vec![0; rsa.public_modulus_len()];
            rsa.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                MESSAGE,
                &mut signature,
            )
            .expect("RS256 signature");
        }),
    );
    let es256 = rate(
        seconds,
        threads,
        Arc::new(move || {
            ec.sign(&SystemRandom::new(), MESSAGE)
                .expect("ES256 signature");
        }),
    );
    println!(
        "{}",
        serde_json::json!({
            "threads": threads, "seconds": seconds,
            "rs256_per_s": rs256.round(), "es256_per_s": es256.round(),
        })
    );
}
