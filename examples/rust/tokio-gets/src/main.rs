use dcache::{Cache, CacheOptions};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), dcache::Error> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "tokio.dcache".into());
    let cache = Cache::open(path.as_ref(), &CacheOptions::new().create(true).capacity(64 << 20))?;
    for i in 0..100u32 {
        cache.put(format!("object-{i}").as_bytes(), &vec![i as u8; 64 << 10], 0)?;
    }
    cache.flush()?;
    let reader = Arc::new(cache.async_reader(32)?); // 32 reads in flight on io_uring
    let gets = (0..100u32).map(|i| {
        let reader = reader.clone();
        tokio::spawn(async move { reader.get(format!("object-{i}").as_bytes()).await })
    });
    let mut bytes = 0;
    for get in gets {
        bytes += get.await.expect("task").map(|v| v.len())?;
    }
    println!("100 gets awaited, {bytes} bytes, none blocked the executor");
    Ok(())
}
