use dcache::{Cache, CacheOptions, Fetched};

fn main() -> Result<(), dcache::Error> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "hello.dcache".into());
    let cache = Cache::open(path.as_ref(), &CacheOptions::new().create(true).capacity(64 << 20))?;
    cache.put(b"greeting", b"hello, disk", 0)?;
    let mut buf = vec![0u8; 64];
    if let Fetched::Copied(n) = cache.get(b"greeting", &mut buf)? {
        println!("greeting = {}", String::from_utf8_lossy(&buf[..n]));
    }
    cache.close()
}
