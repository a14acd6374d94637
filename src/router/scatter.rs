//! The door and the one scatter/gather: a partition API's request is
//! resolved against this shard's routing table once (one lookup by topic
//! name, then compact ids), each owning shard gets its share in one job,
//! the owners work concurrently, and the answers are put back in request
//! order.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{join_all, select_all, Either};

use super::RequestContext;
use crate::handler::{Access, Decoded, Limits, PartitionApi, Response, Topic};
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::authz::ConnAuth;
use crate::shard::metadata::ClusterMetadata;
use crate::shard::routing_table::{PartitionId, RouteError, RoutingTable};
use crate::shard::Shard;

/// Serves a partition API's request: decode, route at the door, serve
/// every partition on its owner, answer. A long-polling API (Fetch) gets
/// rounds of this until it is satisfied, waiting in between for new data
/// on any of its partitions.
pub async fn serve<H: PartitionApi>(
    shard: &Rc<Shard>,
    req: RequestFrame,
    ctx: RequestContext,
) -> Result<Option<Response>, FrameError> {
    let connection_max = ctx.responses.cap() as usize;
    let limits = Limits {
        response_bytes_max: shard.config.fetch_max_bytes.min(connection_max),
        replica_response_bytes_max: shard
            .config
            .replica_fetch_response_max_bytes
            .min(connection_max),
        replica_partition_bytes_max: shard.config.replica_fetch_max_bytes,
    };
    let (request, params, topics) = match H::decode(&req, &limits)? {
        Decoded::Answer(answer) => return Ok(answer),
        Decoded::Route {
            request,
            params,
            topics,
        } => (request, params, topics),
    };
    let plan = Plan::resolve(
        shard,
        topics,
        H::access(&request),
        H::replica_reads(&request),
        &ctx.auth,
    );
    loop {
        // A response that may be large waits for its budget before anything
        // is read: a connection that does not read its responses stops here.
        // Each round takes it afresh and a round that waits for more data
        // gives it all back first, so long polls hold nothing while they
        // wait.
        let hold = match H::response_bytes(&request) {
            Some(bytes) => Some(ctx.responses.acquire(bytes as u64).await),
            None => None,
        };
        let mut answers = plan.answers(plan.run::<H>(shard, params.clone()).await);
        let wait = H::settle(&request, &mut answers);
        match wait {
            Some(deadline) if !shard.is_shutting_down() => {
                drop(answers);
                drop(hold);
                plan.wait_for_data::<H>(shard, deadline).await;
            }
            _ => {
                let response = H::respond(&req, request, answers)?;
                if let Some(mut hold) = hold {
                    // What the response really takes (one batch may go past
                    // the limit, KIP-74), kept until it is written.
                    let bytes: usize = response.iter().flatten().map(|b| b.len()).sum();
                    hold.resize_now(bytes as u64);
                    *ctx.response_hold.borrow_mut() = Some(hold);
                }
                return Ok(response);
            }
        }
    }
}

/// A request's partitions resolved at the door.
struct Plan<T> {
    /// The table the ids belong to.
    routing: Rc<RoutingTable>,
    /// The request's shape and inputs, as decoded.
    topics: Vec<Topic<T>>,
    /// Each partition in request order: its id, or why it has none.
    routes: Vec<Result<PartitionId, RouteError>>,
    /// The shard serving each routed partition (in `routes` order; any
    /// value for an unrouted one): its owner, or for a read a follower
    /// replica may serve, the shard holding that replica.
    serving: Vec<usize>,
    /// Positions (into `routes`) grouped by owning shard; empty when every
    /// partition is this shard's (the per-shard listener's common case).
    owners: Vec<(usize, Vec<usize>)>,
}

/// One owner's answers, with their positions in the request.
type OwnerAnswers<O> = (Vec<usize>, Vec<O>);

/// One owner's share of a request being served.
type OwnerWork<O> = Pin<Box<dyn Future<Output = OwnerAnswers<O>>>>;

impl<T: Clone + Send + 'static> Plan<T> {
    fn resolve(
        shard: &Shard,
        topics: Vec<Topic<T>>,
        access: Access,
        replica_reads: bool,
        auth: &ConnAuth,
    ) -> Self {
        let routing = shard.routing();
        let count = topics.iter().map(|t| t.partitions.len()).sum();
        let mut routes = Vec::with_capacity(count);
        let mut serving = Vec::with_capacity(count);
        let mut all_local = true;
        let cluster_allowed = match access {
            Access::Cluster(op) => auth.cluster(op),
            Access::Topic(_) => true,
        };
        for topic in &topics {
            let route = routing.topic(&topic.name);
            // Authorization comes first: an unknown topic the principal may
            // not see is refused as unauthorized, as in Kafka.
            let allowed = match (access, route) {
                (Access::Cluster(_), _) => cluster_allowed,
                (Access::Topic(op), Some(r)) => {
                    auth.topic_cached(routing.version(), r.key(), op, &topic.name)
                }
                (Access::Topic(op), None) => auth.topic(op, &topic.name),
            };
            for &(index, _) in &topic.partitions {
                let id = if allowed {
                    route
                        .and_then(|r| r.partition(index))
                        .ok_or(RouteError::UnknownTopicOrPartition)
                } else {
                    Err(RouteError::Unauthorized)
                };
                let served = id.and_then(|id| {
                    routing
                        .serving_shard(id, replica_reads)
                        .map(|s| (id, s))
                        .ok_or(RouteError::NotLeader)
                });
                let id = served.map(|(id, _)| id);
                let at = served.map_or(shard.id, |(_, s)| s);
                if id.is_ok() {
                    all_local &= at == shard.id;
                }
                routes.push(id);
                serving.push(at);
            }
        }
        let mut owners: Vec<(usize, Vec<usize>)> = Vec::new();
        if !all_local {
            for (pos, id) in routes.iter().enumerate() {
                if id.is_err() {
                    continue;
                }
                let owner = serving[pos];
                match owners.iter_mut().find(|(o, _)| *o == owner) {
                    Some((_, positions)) => positions.push(pos),
                    None => owners.push((owner, vec![pos])),
                }
            }
        }
        Plan {
            routing,
            topics,
            routes,
            serving,
            owners,
        }
    }

    fn inputs(&self) -> impl Iterator<Item = &T> + '_ {
        self.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|(_, input)| input))
    }

    /// Runs `H::serve` for every partition on its owner, all owners at
    /// once; the outputs come back in request order.
    async fn run<H: PartitionApi<Input = T>>(
        &self,
        shard: &Rc<Shard>,
        params: H::Params,
    ) -> Vec<H::Output> {
        if self.owners.is_empty() {
            // Every partition is this shard's: serve them here, together.
            let now = shard.routing();
            let from = self.routing.metadata();
            let work = self.routes.iter().zip(self.inputs()).map(|(route, input)| {
                serve_one::<H>(shard, &now, from, *route, params.clone(), input.clone())
            });
            return join_all(work).await;
        }
        let inputs: Vec<&T> = self.inputs().collect();
        let mut outputs: Vec<Option<H::Output>> = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            outputs.push(route.err().map(H::Output::from));
        }
        let mut work: Vec<OwnerWork<H::Output>> = Vec::with_capacity(self.owners.len());
        for (owner, positions) in &self.owners {
            let items: Vec<(PartitionId, T)> = positions
                .iter()
                .map(|&pos| {
                    let id = self.routes[pos].expect("grouped positions are routed");
                    (id, inputs[pos].clone())
                })
                .collect();
            let positions = positions.clone();
            let metadata = self.routing.metadata().clone();
            if *owner == shard.id {
                let shard = shard.clone();
                let params = params.clone();
                work.push(Box::pin(async move {
                    let answers = serve_here::<H>(shard, metadata, items, params).await;
                    (positions, answers)
                }));
            } else {
                let n = items.len();
                let shard = shard.clone();
                let owner = *owner;
                let params = params.clone();
                work.push(Box::pin(async move {
                    let answers = shard
                        .run_on(owner, move |target| {
                            serve_here::<H>(target, metadata, items, params)
                        })
                        .await
                        .unwrap_or_else(|_| (0..n).map(|_| RouteError::ShardGone.into()).collect());
                    (positions, answers)
                }));
            }
        }
        for (positions, answers) in join_all(work).await {
            for (pos, answer) in positions.into_iter().zip(answers) {
                outputs[pos] = Some(answer);
            }
        }
        outputs
            .into_iter()
            .map(|o| o.expect("every partition answered"))
            .collect()
    }

    /// Puts the outputs (in request order) back into the request's shape.
    fn answers<O>(&self, outputs: Vec<O>) -> Vec<Topic<O>> {
        let mut outputs = outputs.into_iter();
        self.topics
            .iter()
            .map(|t| Topic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|(index, _)| (*index, outputs.next().expect("one output per partition")))
                    .collect(),
            })
            .collect()
    }

    /// Resolves when any routed partition has data for its input, at the
    /// deadline, or when the shard starts shutting down.
    async fn wait_for_data<H: PartitionApi<Input = T>>(
        &self,
        shard: &Rc<Shard>,
        deadline: Instant,
    ) {
        let mut by_owner: Vec<(usize, Vec<(PartitionId, T)>)> = Vec::new();
        for ((route, input), &owner) in self.routes.iter().zip(self.inputs()).zip(&self.serving) {
            let Ok(id) = route else { continue };
            let item = (*id, input.clone());
            match by_owner.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, items)) => items.push(item),
                None => by_owner.push((owner, vec![item])),
            }
        }
        let mut waits: Vec<Pin<Box<dyn Future<Output = ()>>>> =
            Vec::with_capacity(by_owner.len() + 2);
        for (owner, items) in by_owner {
            let metadata = self.routing.metadata().clone();
            let shard = shard.clone();
            waits.push(Box::pin(async move {
                // A remote owner's wait ends at the deadline on its own even
                // when this side stops waiting first.
                let _ = shard
                    .run_on(owner, move |target| {
                        wait_local::<H>(target, metadata, items, deadline)
                    })
                    .await;
            }));
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        waits.push(Box::pin(glommio::timer::sleep(timeout)));
        let stop = shard.clone();
        waits.push(Box::pin(async move { stop.shutdown.wait().await }));
        select_all(waits).await;
    }
}

/// This shard's partition for an id resolved against `from`: the id is
/// checked against this shard's current table (translated if a metadata
/// change came in between) before any partition is touched.
fn local_partition(
    shard: &Shard,
    now: &RoutingTable,
    from: &ClusterMetadata,
    route: Result<PartitionId, RouteError>,
) -> Result<Rc<Partition>, RouteError> {
    let id = now
        .translate(from, route?)
        .ok_or(RouteError::UnknownTopicOrPartition)?;
    shard.partition(id).ok_or(RouteError::NotServedHere)
}

/// One partition on this shard.
fn serve_one<H: PartitionApi>(
    shard: &Shard,
    now: &RoutingTable,
    from: &ClusterMetadata,
    route: Result<PartitionId, RouteError>,
    params: H::Params,
    input: H::Input,
) -> impl Future<Output = H::Output> + 'static {
    match local_partition(shard, now, from, route) {
        Ok(p) => Either::Left(H::serve(p, params, input)),
        Err(e) => Either::Right(std::future::ready(H::Output::from(e))),
    }
}

/// An owner's share of a request, run on the owner (this shard or the one
/// the job was sent to).
async fn serve_here<H: PartitionApi>(
    shard: Rc<Shard>,
    from: Arc<ClusterMetadata>,
    items: Vec<(PartitionId, H::Input)>,
    params: H::Params,
) -> Vec<H::Output> {
    let now = shard.routing();
    let work = items
        .into_iter()
        .map(|(id, input)| serve_one::<H>(&shard, &now, &from, Ok(id), params.clone(), input));
    join_all(work).await
}

/// An owner's share of a long poll's wait: resolves when one of its
/// partitions has data, or at the deadline.
async fn wait_local<H: PartitionApi>(
    shard: Rc<Shard>,
    from: Arc<ClusterMetadata>,
    items: Vec<(PartitionId, H::Input)>,
    deadline: Instant,
) {
    let now = shard.routing();
    let mut waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = Vec::with_capacity(items.len() + 1);
    for (id, input) in items {
        let Ok(p) = local_partition(&shard, &now, &from, Ok(id)) else {
            // Gone: the next round reports it at once.
            return;
        };
        waits.push(Box::pin(H::data_beyond(p, input)));
    }
    let timeout = deadline.saturating_duration_since(Instant::now());
    waits.push(Box::pin(glommio::timer::sleep(timeout)));
    select_all(waits).await;
}
