//! The system's SQLite, loaded on first use instead of at every start.
//!
//! Only the daemon's usage reader opens a database (OpenCode's, read-only),
//! yet a binary linked to `libsqlite3.so.0` has the loader map it (and the
//! `libm` it needs), relocate it and bind its symbols before `main`, in
//! every process: `ringlet --help`, every TAB completion, every shim. That
//! was about 0.6 ms of a 2.6 ms `--help` (two of five libraries, 1.4 MB
//! mapped, a thousand relocations).
//!
//! So this file defines every SQLite function rusqlite calls, as a small
//! forwarder: the first call `dlopen`s `libsqlite3.so.0` (once, for all of
//! them) and each forwarder finds its function there once. The link then
//! finds nothing left to take from `libsqlite3.so`, and `--as-needed`
//! (rustc's default) leaves it out of the binary's `NEEDED`. rusqlite, its
//! types and its checks are unchanged; the library is the same file the
//! linker would have named.
//!
//! A function rusqlite calls that is not listed here still resolves to the
//! real library at link time, which then comes back into `NEEDED`: still
//! correct (`dlopen` finds the same library already loaded), only loaded at
//! start again; `readelf -d target/release/ringlet` shows it.
//!
//! When the library cannot be loaded (a binary copied to a system without
//! SQLite), opening a database fails as a missing file would, with a
//! warning naming the library; nothing else can be reached without an open
//! database. Linux with glibc 2.34+ only (where `dlopen` is in libc itself,
//! so no `libdl` stub is loaded in its place); elsewhere, and with
//! `bundled-sqlite` (SQLite compiled in), the link is as it always was.
//! Packagers: the binary no longer names `libsqlite3.so.0`, so
//! `dpkg-shlibdeps` cannot see it; `src/dist/deb.sh` adds `libsqlite3-0`
//! to `Depends` itself.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The library the linker would have named (its soname).
const LIBRARY: &str = "libsqlite3.so.0";

/// `SQLITE_CANTOPEN`: what opening gives when the library is missing.
const CANTOPEN: c_int = 14;
/// `SQLITE_MISUSE`: what any other call gives then (none can happen
/// without an open database).
const MISUSE: c_int = 21;

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}

/// `RTLD_NOW | RTLD_LOCAL`: every symbol bound at once (a missing one fails
/// the load, not a later call), none made visible to other libraries.
const RTLD_NOW: c_int = 2;

/// The `dlopen` handle (as an address: a raw pointer is not `Sync`), or 0
/// when the library could not be loaded.
fn library() -> usize {
    static HANDLE: OnceLock<usize> = OnceLock::new();
    *HANDLE.get_or_init(|| {
        let name = format!("{LIBRARY}\0");
        // SAFETY: `name` is NUL-terminated and outlives the call; loading
        // the system's SQLite runs no code of ours.
        let handle = unsafe { dlopen(name.as_ptr().cast(), RTLD_NOW) };
        if handle.is_null() {
            // SAFETY: dlerror returns NULL or a NUL-terminated string valid
            // until the next dl* call on this thread, read at once.
            let why = unsafe {
                let e = dlerror();
                if e.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
                }
            };
            crate::warn!(
                "SQLite is not available ({LIBRARY}: {why}): OpenCode's database is not read"
            );
        }
        handle as usize
    })
}

/// The address of `name` (NUL-terminated) in the library, or NULL.
fn symbol(name: &'static str) -> *mut c_void {
    let handle = library();
    if handle == 0 {
        return null_mut();
    }
    // SAFETY: `handle` came from dlopen and is never closed; `name` is a
    // NUL-terminated literal.
    unsafe { dlsym(handle as *mut c_void, name.as_ptr().cast()) }
}

/// One forwarder a function: the C signature of sqlite3.h (pointers to
/// SQLite's opaque types and to callbacks as `*mut c_void`, which the C ABI
/// passes the same way), and the value it gives when the library or the
/// symbol is missing.
macro_rules! forward {
    ($( fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $fallback:expr; )*) => {$(
        #[unsafe(no_mangle)]
        // `= ()` is the fallback of the functions that return nothing.
        #[allow(clippy::unused_unit)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            static ADDRESS: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
            let mut address = ADDRESS.load(Ordering::Acquire);
            if address.is_null() {
                address = symbol(concat!(stringify!($name), "\0"));
                ADDRESS.store(address, Ordering::Release);
            }
            if address.is_null() {
                return $fallback;
            }
            // SAFETY: `address` is the library's own `$name`, whose C
            // signature (sqlite3.h) is the one declared here and in
            // libsqlite3-sys; the caller upholds its contract, as it would
            // calling the library directly.
            unsafe {
                let f: unsafe extern "C" fn($($ty),*) $(-> $ret)? = std::mem::transmute(address);
                f($($arg),*)
            }
        }
    )*};
}

type Db = *mut c_void;
type Stmt = *mut c_void;
type Text = *const c_char;

forward! {
    fn sqlite3_threadsafe() -> c_int = 1;
    fn sqlite3_libversion_number() -> c_int = 0;
    fn sqlite3_mutex_alloc(kind: c_int) -> *mut c_void = null_mut();
    fn sqlite3_mutex_free(mutex: *mut c_void) = ();
    fn sqlite3_open_v2(path: Text, db: *mut Db, flags: c_int, vfs: Text) -> c_int = {
        if !db.is_null() {
            // SAFETY: SQLite's contract: `db` points to the caller's handle.
            unsafe { *db = null_mut() };
        }
        CANTOPEN
    };
    fn sqlite3_close(db: Db) -> c_int = MISUSE;
    fn sqlite3_extended_result_codes(db: Db, on: c_int) -> c_int = MISUSE;
    fn sqlite3_busy_timeout(db: Db, ms: c_int) -> c_int = MISUSE;
    fn sqlite3_limit(db: Db, id: c_int, value: c_int) -> c_int = -1;
    fn sqlite3_errcode(db: Db) -> c_int = MISUSE;
    fn sqlite3_errmsg(db: Db) -> Text = std::ptr::null();
    fn sqlite3_errstr(code: c_int) -> Text = std::ptr::null();
    fn sqlite3_progress_handler(db: Db, n: c_int, callback: *mut c_void, arg: *mut c_void) = ();
    fn sqlite3_set_authorizer(db: Db, callback: *mut c_void, arg: *mut c_void) -> c_int = MISUSE;
    fn sqlite3_commit_hook(db: Db, callback: *mut c_void, arg: *mut c_void) -> *mut c_void = null_mut();
    fn sqlite3_rollback_hook(db: Db, callback: *mut c_void, arg: *mut c_void) -> *mut c_void = null_mut();
    fn sqlite3_update_hook(db: Db, callback: *mut c_void, arg: *mut c_void) -> *mut c_void = null_mut();
    fn sqlite3_prepare_v2(db: Db, sql: Text, bytes: c_int, stmt: *mut Stmt, tail: *mut Text) -> c_int = MISUSE;
    fn sqlite3_step(stmt: Stmt) -> c_int = MISUSE;
    fn sqlite3_reset(stmt: Stmt) -> c_int = MISUSE;
    fn sqlite3_finalize(stmt: Stmt) -> c_int = MISUSE;
    fn sqlite3_bind_parameter_count(stmt: Stmt) -> c_int = 0;
    fn sqlite3_bind_null(stmt: Stmt, i: c_int) -> c_int = MISUSE;
    fn sqlite3_bind_int64(stmt: Stmt, i: c_int, value: i64) -> c_int = MISUSE;
    fn sqlite3_bind_double(stmt: Stmt, i: c_int, value: f64) -> c_int = MISUSE;
    fn sqlite3_bind_text(stmt: Stmt, i: c_int, text: Text, n: c_int, free: *mut c_void) -> c_int = MISUSE;
    fn sqlite3_bind_blob(stmt: Stmt, i: c_int, blob: *const c_void, n: c_int, free: *mut c_void) -> c_int = MISUSE;
    fn sqlite3_bind_zeroblob(stmt: Stmt, i: c_int, n: c_int) -> c_int = MISUSE;
    fn sqlite3_column_count(stmt: Stmt) -> c_int = 0;
    fn sqlite3_column_name(stmt: Stmt, i: c_int) -> Text = std::ptr::null();
    fn sqlite3_column_type(stmt: Stmt, i: c_int) -> c_int = 5;
    fn sqlite3_column_int64(stmt: Stmt, i: c_int) -> i64 = 0;
    fn sqlite3_column_double(stmt: Stmt, i: c_int) -> f64 = 0.0;
    fn sqlite3_column_text(stmt: Stmt, i: c_int) -> *const u8 = std::ptr::null();
    fn sqlite3_column_bytes(stmt: Stmt, i: c_int) -> c_int = 0;
    fn sqlite3_column_blob(stmt: Stmt, i: c_int) -> *const c_void = std::ptr::null();
}
