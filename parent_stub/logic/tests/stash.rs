// SPDX-License-Identifier: GPL-2.0

//! The stash policy, with a stand-in blob format: `[0xB1, held, payload..]`.

use hotup_parent_logic::stash::{BadBlob, Format, Offer, StashState};
use proptest::prelude::*;

struct Fake;

const EINVAL: i32 = -22;

impl Format for Fake {
    fn check(blob: &[u8]) -> Result<usize, BadBlob> {
        match blob {
            [0xB1, held, ..] => Ok(usize::from(*held)),
            _ => Err(BadBlob {
                why: "bad-magic",
                errno: EINVAL,
            }),
        }
    }

    fn without_held(blob: &[u8], out: &mut [u8]) -> Option<usize> {
        Self::check(blob).ok()?;
        let out = out.get_mut(..blob.len())?;
        out.copy_from_slice(blob);
        out[1] = 0;
        Some(blob.len())
    }
}

type Stash = hotup_parent_logic::stash::Stash<Vec<u8>, Fake, 4>;

const CAP: usize = 16;

fn stash() -> Stash {
    Stash::with_buffers(vec![0; CAP], vec![0; CAP], vec![0; CAP])
}

/// What a child's export writes.
#[derive(Clone, Debug)]
enum Export {
    Good { held: u8, payload: Vec<u8> },
    Corrupt(Vec<u8>),
    Fails(i32),
}

impl Export {
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Export::Good { held, payload } => Some([&[0xB1, *held][..], payload].concat()),
            Export::Corrupt(b) => Some(b.clone()),
            Export::Fails(_) => None,
        }
    }

    fn run(&self, buf: &mut [u8]) -> Result<usize, i32> {
        match (self, self.bytes()) {
            (Export::Fails(e), _) => Err(*e),
            (_, Some(b)) => {
                buf[..b.len()].copy_from_slice(&b);
                Ok(b.len())
            }
            _ => unreachable!(),
        }
    }
}

fn good(held: u8, payload: &[u8]) -> Export {
    Export::Good {
        held,
        payload: payload.to_vec(),
    }
}

const V1: ([u8; 4], u32) = (*b"v1\0\0", 1);

fn last_good(s: &Stash) -> Vec<u8> {
    s.bytes_of(Offer::LastGood("")).unwrap().to_vec()
}

#[test]
fn the_first_child_starts_fresh_unless_regions_exist() {
    let s = stash();
    assert_eq!(
        (s.choose(false), s.choose(true)),
        (Offer::Fresh, Offer::Refuse)
    );
    assert_eq!(s.bytes_of(Offer::Fresh), None);
}

#[test]
fn an_adopted_stash_becomes_the_last_good_state_without_its_requests() {
    let mut s = stash();
    assert_eq!(
        s.export_with(V1, |b| good(3, b"abc").run(b)),
        StashState::Valid
    );
    assert_eq!((s.held, s.from, s.choose(true)), (3, V1, Offer::Stash));
    assert_eq!(
        s.bytes_of(Offer::Stash),
        Some(&[0xB1, 3, b'a', b'b', b'c'][..])
    );
    s.adopted(Offer::Stash);
    assert_eq!(last_good(&s), [0xB1, 0, b'a', b'b', b'c']);
    assert_eq!(
        (s.state, s.held, s.stash_bytes()),
        (StashState::Empty, 0, 0)
    );
    assert_eq!(s.choose(true), Offer::LastGood("no-stash"));
}

#[test]
fn a_failed_export_falls_back_to_the_last_good_state() {
    let mut s = stash();
    s.adopted_fresh(|b| good(0, b"x").run(b));
    assert_eq!(
        s.export_with(V1, |b| Export::Fails(-5).run(b)),
        StashState::ExportFailed(-5)
    );
    assert_eq!(s.choose(true), Offer::LastGood("export-failed"));
    assert_eq!(last_good(&s), [0xB1, 0, b'x']);
}

#[test]
fn an_export_claiming_more_than_its_buffer_fails_and_keeps_the_last_good_state() {
    let mut s = stash();
    s.export_with(V1, |b| good(0, b"ok").run(b));
    s.adopted(Offer::Stash);
    let lg = last_good(&s);
    let state = s.export_with(V1, |_| Ok(CAP + 1));
    assert_eq!(state, StashState::ExportFailed(-75));
    assert_eq!((s.stash_bytes(), last_good(&s)), (0, lg.clone()));
    assert_eq!(s.trial(|_| Ok(CAP + 1)).err(), Some(-75));
    assert_eq!(s.discard(), lg.len());
}

#[test]
fn a_corrupt_stash_is_offered_once() {
    let mut s = stash();
    s.adopted_fresh(|b| good(0, b"x").run(b));
    assert_eq!(
        s.export_with(V1, |b| Export::Corrupt(vec![1, 2]).run(b)),
        StashState::Corrupt("bad-magic")
    );
    assert_eq!(s.choose(true), Offer::Stash);
    s.refused(Offer::Stash, 2);
    assert_eq!(s.choose(true), Offer::LastGood("corrupt-stash"));
}

#[test]
fn a_stash_its_producer_refused_gives_way_to_the_last_good_state() {
    let mut s = stash();
    s.adopted_fresh(|b| good(0, b"x").run(b));
    s.export_with(V1, |b| good(0, b"y").run(b));
    s.refused(Offer::Stash, 2);
    assert_eq!(s.choose(true), Offer::Stash);
    s.refused(Offer::Stash, 1);
    assert_eq!(s.choose(true), Offer::LastGood("refused-by-producer"));
}

#[test]
fn a_fresh_export_that_hands_over_requests_is_no_last_good_state() {
    let mut s = stash();
    s.adopted_fresh(|b| good(1, b"x").run(b));
    assert_eq!((s.last_good_bytes(), s.choose(false)), (0, Offer::Fresh));
}

#[test]
fn trial_withdraw_and_discard() {
    let mut s = stash();
    s.adopted_fresh(|b| good(0, b"x").run(b));
    s.export_with(V1, |b| good(0, b"yy").run(b));
    assert_eq!(s.trial(|b| good(0, b"z").run(b)), Ok(&[0xB1, 0, b'z'][..]));
    assert_eq!(s.trial(|b| Export::Corrupt(vec![0]).run(b)), Err(EINVAL));
    assert_eq!(s.trial(|b| Export::Fails(-5).run(b)), Err(-5));
    assert_eq!(s.bytes_of(Offer::Stash), Some(&[0xB1, 0, b'y', b'y'][..]));
    s.withdraw_export();
    assert_eq!(s.choose(true), Offer::LastGood("no-stash"));
    assert_eq!(s.discard(), 3);
    assert_eq!(s.choose(false), Offer::Fresh);
}

fn export() -> impl Strategy<Value = Export> {
    prop_oneof![
        3 => (0u8..4, prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(held, payload)| Export::Good { held, payload }),
        // Anything but the magic.
        1 => prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(|b| Export::Corrupt(b.into_iter().filter(|&x| x != 0xB1).collect())),
        1 => (-40i32..-1).prop_map(Export::Fails),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Export(Export, u32),
    Trial(Export),
    /// The next child, of version `.0`: whether its adopt succeeds, and
    /// what it exports after a fresh start.
    Attach(u32, bool, Export, bool),
    Withdraw,
    Discard,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (export(), 1u32..3).prop_map(|(e, v)| Op::Export(e, v)),
        1 => export().prop_map(Op::Trial),
        4 => (1u32..3, any::<bool>(), export(), any::<bool>())
            .prop_map(|(v, ok, e, r)| Op::Attach(v, ok, e, r)),
        1 => Just(Op::Withdraw),
        1 => Just(Op::Discard),
    ]
}

/// One `Op::Attach` of the property below: what the stash offers the
/// next child, and what its adopt (or refusal) leaves.
fn attach(
    s: &mut Stash,
    (newest, refused_corrupt): (&mut Option<Vec<u8>>, &mut bool),
    kept: &[u8],
    (version, ok, fresh, regions): (u32, bool, &Export, bool),
) -> Result<(), TestCaseError> {
    let offer = s.choose(regions);
    match offer {
        Offer::Fresh => prop_assert!(kept.is_empty() && !regions && s.state == StashState::Empty),
        Offer::Refuse => prop_assert!(kept.is_empty() && (regions || s.state != StashState::Empty)),
        Offer::Stash => {
            prop_assert!(matches!(
                s.state,
                StashState::Valid | StashState::Corrupt(_)
            ));
            prop_assert!(!*refused_corrupt);
            prop_assert_eq!(s.bytes_of(offer), newest.as_deref());
        }
        Offer::LastGood(_) => prop_assert!(!kept.is_empty()),
    }
    if offer == Offer::Refuse {
        return Ok(());
    }
    if !ok {
        s.refused(offer, version);
        *refused_corrupt |= offer == Offer::Stash && s.state != StashState::Valid;
        prop_assert_eq!(last_good(s), kept);
        return Ok(());
    }
    if offer == Offer::Fresh {
        s.adopted_fresh(|b| fresh.run(b));
        let want = match fresh {
            Export::Good { held: 0, .. } => fresh.bytes().unwrap(),
            _ => vec![],
        };
        prop_assert_eq!(last_good(s), want);
    } else {
        let adopted = s.bytes_of(offer).unwrap().to_vec();
        s.adopted(offer);
        let want = match Fake::check(&adopted) {
            Ok(_) => [&[0xB1, 0][..], &adopted[2..]].concat(),
            // A corrupt stash that a child adopted anyway.
            Err(_) => vec![],
        };
        prop_assert_eq!(last_good(s), want);
    }
    *newest = None;
    prop_assert_eq!(s.state, StashState::Empty);
    Ok(())
}

proptest! {
    /// The last good state is always the newest adopted good state (with
    /// no requests in it), a refused adopt or any export loses nothing, and
    /// a fresh start never replaces existing state.
    #[test]
    fn the_last_good_state_is_never_lost(ops in prop::collection::vec(op(), 0..60)) {
        let mut s = stash();
        // The stash's bytes as exported, while it is one.
        let mut newest: Option<Vec<u8>> = None;
        let mut refused_corrupt = false;
        for op in ops {
            let kept = last_good(&s);
            match op {
                Op::Export(e, v) => {
                    let state = s.export_with((*b"c\0\0\0", v), |b| e.run(b));
                    newest = e.bytes();
                    refused_corrupt = false;
                    let want = match &e {
                        Export::Good { .. } => StashState::Valid,
                        Export::Corrupt(_) => StashState::Corrupt("bad-magic"),
                        Export::Fails(errno) => StashState::ExportFailed(*errno),
                    };
                    prop_assert_eq!(state, want);
                    if state == StashState::Valid {
                        // The newest good export is what is offered.
                        prop_assert_eq!(s.choose(true), Offer::Stash);
                        prop_assert_eq!(s.bytes_of(Offer::Stash), newest.as_deref());
                    }
                    prop_assert_eq!(last_good(&s), kept);
                }
                Op::Trial(e) => {
                    let before = (s.state, s.bytes_of(Offer::Stash).map(<[u8]>::to_vec));
                    let _ = s.trial(|b| e.run(b));
                    prop_assert_eq!((s.state, s.bytes_of(Offer::Stash).map(<[u8]>::to_vec)), before);
                    prop_assert_eq!(last_good(&s), kept);
                }
                Op::Attach(version, ok, fresh, regions) => attach(
                    &mut s,
                    (&mut newest, &mut refused_corrupt),
                    &kept,
                    (version, ok, &fresh, regions),
                )?,
                Op::Withdraw => {
                    s.withdraw_export();
                    newest = None;
                    prop_assert_eq!(last_good(&s), kept);
                }
                Op::Discard => {
                    s.discard();
                    newest = None;
                    prop_assert_eq!((s.choose(false), s.last_good_bytes()), (Offer::Fresh, 0));
                }
            }
            // Whatever is kept passes the check and hands over nothing.
            let lg = last_good(&s);
            prop_assert!(lg.is_empty() || Fake::check(&lg) == Ok(0));
            prop_assert_eq!(s.stash_bytes(), s.bytes_of(Offer::Stash).map_or(0, <[u8]>::len));
        }
    }
}
