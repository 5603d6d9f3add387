//! The body shapes of `lock-macros/tests/ui/pass/lint_free.rs` under clippy, and run.
//!
//! trybuild compiles that file with `#![deny(warnings)]`, which covers rustc's
//! lints only. Including it here puts the same fns under CI's
//! `cargo clippy --workspace --all-targets -- -D warnings` with every default
//! clippy lint denied, so a lint the expansion brings back fails CI even
//! though no test fails. One source for both checks keeps them from drifting.
#![deny(warnings, clippy::all)]

mod common;
// `pub` items reach no one here, as they do in a user's crate; the
// expansion's lints are what this checks.
#[allow(unreachable_pub)]
#[path = "../lock-macros/tests/ui/pass/lint_free.rs"]
mod shapes;

use lock_testkit::RedisServer;
use shapes::Service as _;

#[tokio::test]
async fn every_body_shape_runs_under_its_lock_and_releases_it() {
    let server = RedisServer::start();
    distlock::init(&server.url()).await.expect("init");
    // Building the futures is what the trybuild case runs; here they run.
    shapes::main();

    assert_eq!(shapes::one_expression(7).await.ok(), Some(7));
    assert_eq!(shapes::two_keys(3, 4).await.ok(), Some(7));
    assert_eq!(shapes::three_permits(7).await.ok(), Some(7));
    assert_eq!(shapes::reader(7).await.ok(), Some(8));
    assert_eq!(shapes::writer("7".to_owned()).await.ok(), Some(7));
    assert_eq!(
        shapes::only_question_marks("21".to_owned()).await.ok(),
        Some(42)
    );
    assert!(matches!(
        shapes::only_question_marks("x".to_owned()).await,
        Err(shapes::AppError::Parse(_))
    ));
    assert_eq!(shapes::early_return(0).await.ok(), Some(0));
    assert_eq!(shapes::early_return(4).await.ok(), Some(8));
    assert_eq!(shapes::loop_body(3).await.ok(), Some(3));
    assert_eq!(
        shapes::impl_trait(5)
            .await
            .map(|value| value.to_string())
            .ok(),
        Some("5".to_owned())
    );
    assert!(shapes::unit(1).await.is_ok());
    assert_eq!(shapes::only_awaits("9".to_owned()).await.ok(), Some(9));
    assert_eq!(
        shapes::question_marks_in_one_line("4".to_owned())
            .await
            .ok(),
        Some(8)
    );
    assert_eq!(
        shapes::impl_trait_in_one_line(6)
            .await
            .map(|value| value.to_string())
            .ok(),
        Some("6".to_owned())
    );

    let shard = shapes::Shard {
        name: "a".to_owned(),
    };
    assert_eq!(shard.one_expression(7).await.ok(), Some(7));
    assert_eq!(
        shard.only_question_marks("21".to_owned()).await.ok(),
        Some(42)
    );
    assert_eq!(shard.early_return(4).await.ok(), Some(8));
    assert_eq!(shard.loop_body(2).await.ok(), Some(2));
    assert!(shard.unit(1).await.is_ok());
    assert_eq!(shard.only_awaits("9".to_owned()).await.ok(), Some(9));

    // Every call released its lock.
    assert_eq!(common::lease_keys(&server).await, Vec::<String>::new());
}
