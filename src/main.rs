// mimalloc instead of glibc's malloc: a request allocates and frees hundreds of small
// buffers on two busy threads, where glibc's arenas spent a sixth of the server's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    linli::cli::run()
}
