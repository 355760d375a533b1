//! Isolating the bad events of a batch the destination refused for its data (docs/meta-capi.md
//! decision 6): by the position the destination names, else by bisection. Generic over the
//! sender, so the policy is pure logic tested with a fake sender function.

use std::future::Future;

use super::{Accepted, Delivery, Rejected};

/// Why the destination refused a sub-batch for its data, copied onto each event it isolates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The destination's message with its trace id.
    pub(crate) message: String,
    /// The destination's error code (Meta: 100).
    pub(crate) code: Option<i64>,
    /// The destination's error subcode (Meta: 2804xxx).
    pub(crate) error_subcode: Option<i64>,
}

/// What one sub-batch came to, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The destination took every event of the sub-batch.
    Accepted {
        /// The destination's trace id.
        fbtrace_id: Option<String>,
        /// `events_received` (checked against the sub-batch size by the sender).
        events_received: u64,
    },
    /// The destination refused the sub-batch for its data.
    Rejected {
        /// The position in the sub-batch it named, if it named one.
        position: Option<usize>,
        /// Why.
        refusal: Refusal,
    },
}

/// One sub-batch sent: its answer and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The answer.
    pub(crate) answer: Answer,
    /// HTTP requests made (1 + retries).
    pub(crate) requests: u32,
    /// Retries among them.
    pub(crate) retries: u32,
}

/// A sender error that stopped the batch, with the requests made before it (which the sender's
/// error does not count).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Aborted<E> {
    /// The sender's error.
    pub(crate) error: E,
    /// Requests of the sub-batches answered before it.
    pub(crate) requests: u32,
}

/// Delivers every good event of a batch of `len` and isolates each bad one, given `send`, which
/// sends the events at the given batch indices as one request.
///
/// When the destination names the bad event, it is rejected and the rest re-sent: k + 1
/// requests for k bad events. Otherwise the sub-batch is halved until the bad events stand
/// alone: at most 1 + 2·k·⌈log₂ n⌉ requests. Errors other than data rejections abort the whole
/// batch; events already accepted will be re-sent by a later run and deduplicated by Meta on
/// `event_id`.
pub(crate) async fn isolate_rejections<E, F>(
    len: usize,
    mut send: impl FnMut(Vec<usize>) -> F,
) -> Result<Delivery, Aborted<E>>
where
    F: Future<Output = Result<Attempt, E>>,
{
    let mut delivery = Delivery::default();
    if len == 0 {
        return Ok(delivery);
    }
    let reject = |index: usize, refusal: &Refusal| Rejected {
        index,
        message: refusal.message.clone(),
        code: refusal.code,
        error_subcode: refusal.error_subcode,
    };
    // Depth-first, lower halves first, so indices are visited roughly in order.
    let mut pending: Vec<Vec<usize>> = vec![(0..len).collect()];
    while let Some(indices) = pending.pop() {
        // Owned indices keep the future free of higher-ranked borrows, so it stays `Send`.
        let attempt = match send(indices.clone()).await {
            Ok(attempt) => attempt,
            Err(error) => {
                return Err(Aborted {
                    error,
                    requests: delivery.requests,
                })
            }
        };
        delivery.requests += attempt.requests;
        delivery.retries += attempt.retries;
        match attempt.answer {
            Answer::Accepted {
                fbtrace_id,
                events_received,
            } => {
                delivery.accepted.push(Accepted {
                    indices,
                    fbtrace_id,
                    events_received,
                });
            }
            Answer::Rejected {
                position: Some(position),
                refusal,
            } if position < indices.len() => {
                let mut rest = indices;
                let index = rest.remove(position);
                delivery.rejected.push(reject(index, &refusal));
                if !rest.is_empty() {
                    pending.push(rest);
                }
            }
            Answer::Rejected { refusal, .. } => {
                if let [index] = indices[..] {
                    delivery.rejected.push(reject(index, &refusal));
                } else {
                    let mut lower = indices;
                    let upper = lower.split_off(lower.len() / 2);
                    pending.push(upper);
                    pending.push(lower);
                }
            }
        }
    }
    delivery.rejected.sort_by_key(|rejected| rejected.index);
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::convert::Infallible;

    /// A fake sender's answer: refuses any sub-batch holding a bad index (naming its position
    /// when `named`, or naming `wrong` instead), accepts the rest.
    fn answer(
        indices: &[usize],
        bad: &HashSet<usize>,
        named: bool,
        wrong: Option<usize>,
    ) -> Attempt {
        let answer = match indices.iter().position(|index| bad.contains(index)) {
            Some(position) => Answer::Rejected {
                position: wrong.or(named.then_some(position)),
                refusal: Refusal {
                    message: format!("bad event {}", indices[position]),
                    code: Some(100),
                    error_subcode: Some(2_804_001),
                },
            },
            None => Answer::Accepted {
                fbtrace_id: Some("T".to_owned()),
                events_received: indices.len() as u64,
            },
        };
        Attempt {
            answer,
            requests: 1,
            retries: 0,
        }
    }

    /// Runs `isolate_rejections` over the fake sender.
    async fn isolate(n: usize, bad: &[usize], named: bool, wrong: Option<usize>) -> Delivery {
        let bad: HashSet<usize> = bad.iter().copied().collect();
        isolate_rejections(n, |indices: Vec<usize>| {
            let attempt = answer(&indices, &bad, named, wrong);
            async move { Ok::<_, Infallible>(attempt) }
        })
        .await
        .unwrap()
    }

    /// Every good index accepted exactly once, every bad one rejected exactly once with the
    /// refusal of a sub-batch that held it.
    fn assert_partition(delivery: &Delivery, n: usize, bad: &[usize]) {
        let mut accepted: Vec<usize> = delivery
            .accepted
            .iter()
            .flat_map(|a| a.indices.iter().copied())
            .collect();
        accepted.sort_unstable();
        let expected: Vec<usize> = (0..n).filter(|i| !bad.contains(i)).collect();
        assert_eq!(accepted, expected);
        let rejected: Vec<usize> = delivery.rejected.iter().map(|r| r.index).collect();
        let mut bad = bad.to_vec();
        bad.sort_unstable();
        assert_eq!(rejected, bad);
        for rejected in &delivery.rejected {
            assert_eq!(rejected.message, format!("bad event {}", rejected.index));
            assert_eq!(
                (rejected.code, rejected.error_subcode),
                (Some(100), Some(2_804_001))
            );
        }
        for accepted in &delivery.accepted {
            assert_eq!(accepted.events_received, accepted.indices.len() as u64);
        }
    }

    /// 1 + 2·k·⌈log₂ n⌉: the bisection bound.
    fn bisection_bound(n: usize, k: usize) -> u32 {
        let depth = usize::BITS - (n - 1).leading_zeros();
        (1 + 2 * k * depth as usize) as u32
    }

    #[tokio::test]
    async fn isolation_table() {
        /// (batch size, bad indices, named, requests expected: exact or `None` for the bound).
        type Row = (usize, Vec<usize>, bool, Option<u32>);
        let all: Vec<usize> = (0..64).collect();
        let table: Vec<Row> = vec![
            (1000, vec![], false, Some(1)),
            (1000, vec![417], true, Some(2)),
            // two requests per level of a 10-level tree, plus one
            (1000, vec![417], false, Some(21)),
            (1000, vec![0, 1, 333, 500, 998, 999], true, Some(7)),
            (1000, vec![0, 1, 333, 500, 998, 999], false, None),
            // every node of a full binary tree over 64 leaves
            (64, all.clone(), false, Some(127)),
            (64, all, true, Some(64)),
            (1, vec![0], false, Some(1)),
        ];
        for (n, bad, named, requests) in table {
            let delivery = isolate(n, &bad, named, None).await;
            assert_partition(&delivery, n, &bad);
            let expected = requests.unwrap_or_else(|| bisection_bound(n, bad.len()));
            if requests.is_some() {
                assert_eq!(delivery.requests, expected, "{n} {bad:?} {named}");
            } else {
                assert!(delivery.requests <= expected, "{n} {bad:?} {named}");
            }
        }
    }

    #[tokio::test]
    async fn an_empty_batch_sends_nothing() {
        assert_eq!(isolate(0, &[], false, None).await, Delivery::default());
    }

    #[tokio::test]
    async fn an_out_of_range_named_index_falls_back_to_bisection() {
        let delivery = isolate(8, &[5], true, Some(99)).await;
        assert_partition(&delivery, 8, &[5]);
    }

    #[tokio::test]
    async fn a_sender_error_aborts_the_batch_and_counts_the_requests_before_it() {
        let result: Result<Delivery, Aborted<&str>> =
            isolate_rejections(10, |indices: Vec<usize>| async move {
                if indices.len() == 10 {
                    Ok(answer(&indices, &HashSet::from([3]), false, None))
                } else {
                    Err("token revoked")
                }
            })
            .await;
        assert_eq!(
            result,
            Err(Aborted {
                error: "token revoked",
                requests: 1
            })
        );
    }
}
