//! The two ways [`super::Engine`] runs a use case, on whichever backend it holds.

/// Runs a use case as one write: `write!(self, shreds, ctx, |db, vault, ctx, now| call)`.
macro_rules! write {
    ($engine:expr, $shreds:expr, $ctx:expr, |$db:pat_param, $vault:pat_param, $c:pat_param, $now:pat_param| $call:expr) => {
        match $engine {
            Engine::Sqlite(s) => {
                s.write($shreds, $ctx, |$db, $vault, $c, $now| Box::pin($call))
                    .await
            }
            Engine::Postgres(p) => p.write($ctx, |$db, $vault, $c, $now| Box::pin($call)).await,
        }
    };
}

/// Runs a use case as a read: `read!(self, ctx, |db, vault, ctx| call)`.
macro_rules! read {
    ($engine:expr, $ctx:expr, |$db:pat_param, $vault:pat_param, $c:pat_param| $call:expr) => {
        match $engine {
            Engine::Sqlite(s) => s.read($ctx, |$db, $vault, $c, _| Box::pin($call)).await,
            Engine::Postgres(p) => p.read($ctx, |$db, $vault, $c, _| Box::pin($call)).await,
        }
    };
}
