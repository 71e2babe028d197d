//! The Debian kernel the lab boots (package linux-image-amd64), unpacked once per version into
//! the shared cache. Parallel tests take a lock so that one of them unpacks and the rest wait.

use pairos_image::debian;
use pairos_image::kmod::KernelTree;

use crate::{paths, LabError};

/// The current linux-image-amd64 kernel, unpacked, with `modules.dep` made.
pub fn debian_kernel() -> Result<KernelTree, LabError> {
    let (cache, lock) = paths::locked_cache("debs")?;
    let pkg = debian::kernel_package()?;
    let tree = debian::unpacked(&pkg, &cache)?;
    let kernel = KernelTree::open(&tree)?;
    drop(lock);
    Ok(kernel)
}
