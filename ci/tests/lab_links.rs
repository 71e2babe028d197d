//! The lab's links: endpoints on one link reach each other; links are separate networks.

use pairos_lab::{Lab, LabError};

#[test]
fn endpoints_on_a_link_reach_each_other_and_no_other_link() -> Result<(), LabError> {
    let mut lab = Lab::new("links")?;
    let a = lab.endpoint("private", "a", "10.77.0.1/24")?;
    let b = lab.endpoint("private", "b", "10.77.0.2/24")?;
    let c = lab.endpoint("public", "c", "10.77.0.3/24")?;

    let ping = |from: &pairos_lab::Endpoint, to: &str| {
        from.ns.cmd("ping").args(["-c", "1", "-W", "2", to]).succeeds().expect("run ping")
    };
    assert!(ping(&a, b.addr()), "a reaches b over the private link");
    assert!(ping(&b, a.addr()), "b reaches a over the private link");
    assert!(!ping(&a, c.addr()), "the public link is a separate network");
    Ok(())
}

#[test]
fn a_stale_lab_of_the_same_name_is_cleared() -> Result<(), LabError> {
    let first = Lab::new("stale")?;
    let leftover = first.dir().join("leftover");
    std::fs::write(&leftover, b"x").expect("write");
    std::mem::forget(first); // as if the earlier run had crashed without teardown
    let second = Lab::new("stale")?;
    assert!(!leftover.exists(), "the old work folder is cleared");
    assert!(second.netns().ip(&["link", "show", "lo"]).is_ok());
    Ok(())
}
