----------------------------- MODULE Placement -----------------------------
(***************************************************************************)
(* The v9 placement protocol (docs: /tla/README.md, DESIGN "The placement   *)
(* protocol", issue 5).                                                     *)
(*                                                                          *)
(* Three kinds of state, as in the Go code:                                 *)
(*   - the COMMITTED state (the fsm, replicated by Raft): node status,      *)
(*     placements (desired RUN/STOP, observed STARTING/RUNNING/FAILED/      *)
(*     STOPPED/LOST), each component's active deployment (version);         *)
(*   - the LEADER's volatile state: when it last heard each node (hb);      *)
(*     a new leader has only the committed state and starts hb afresh;      *)
(*   - each NODE's local state: whether it is up, whether it can reach the  *)
(*     leader, its lease (ticks since the leader last answered it), what it *)
(*     has LEARNED of its own placements (a possibly stale copy of the      *)
(*     committed state) and its instances (what really runs).              *)
(*                                                                          *)
(* A placement is identified by <<component, version, node>>: sched.go      *)
(* names placements "<deployment>-<node>-<slot>" and spreads one replica   *)
(* per node, so slot 0 is the only one that matters at these sizes; an id  *)
(* is reused after its placement is deleted, as in placementID.             *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, TLC

CONSTANTS
    Nodes,          \* node ids
    Components,     \* component ids; every component is desired RUNNING
    Exclusive,      \* components with scale.exclusive = true (one replica)
    MaxVersion,     \* deployments of a Deployable component: 1..MaxVersion (1 is active at start)
    Deployable,     \* components that get new deployments (rollouts); the others keep version 1
    REPLICAS,       \* Component.replicas of the non-exclusive components
    LEASE,          \* a node that has not heard the leader for LEASE ticks stops its exclusive instances
    TTL,            \* the leader marks a node DOWN after TTL ticks without a heartbeat
    MaxFaults,      \* budget of faults: node crash, partition, instance failure
    MaxDrains,      \* budget of operator drains (`v9 node drain`)
    NoNode,         \* a model value: "no leader"
    INSTANCE_FAULTS, \* TRUE: an instance may also crash on its own (a fault, restarted)
    BUG_NO_LEASE_WAIT, \* TRUE seeds a bug: the leader declares a node down (and re-places
                      \* its exclusive components) after LEASE ticks instead of TTL > LEASE
    MaxRemovals,    \* budget of `v9 cluster remove-peer` / `leave` (of any node, live or not)
    NEVER_READY,    \* versions (of Deployable components) whose instances never pass readiness
    CANARY_BAD,     \* versions that pass readiness but fail their canary (5xx on real traffic)
    CANARY,         \* TRUE: a ready new version is a canary until promoted (rollout.canary)
    BUG_REMOVE_KEEPS_PLACEMENTS, \* TRUE seeds a bug: removal leaves the node's placements as they were
    BUG_REMOVE_NO_WAIT,          \* TRUE seeds a bug: an exclusive component lost on a removed
                                 \* node is re-placed at once, without waiting out its lease
    BUG_DRAIN_BEFORE_READY,      \* TRUE seeds a bug: a rollout stops the old version once the
                                 \* new one is placed, before it is ready
    BUG_NO_CANARY_HOLD           \* TRUE seeds a bug: the old version stops once the new one is
                                 \* ready, before its canary has passed

ASSUME /\ Exclusive \subseteq Components
       /\ Deployable \subseteq Components
       /\ MaxVersion \in Nat \ {0}
       /\ REPLICAS \in 1..Cardinality(Nodes)
       /\ LEASE \in Nat /\ LEASE >= 2        \* a lease survives one tick between heartbeats
       /\ TTL \in Nat /\ TTL > LEASE          \* THE rule for exclusive components
       /\ MaxFaults \in Nat /\ MaxDrains \in Nat
       /\ NoNode \notin Nodes
       /\ BUG_NO_LEASE_WAIT \in BOOLEAN
       /\ INSTANCE_FAULTS \in BOOLEAN
       /\ MaxRemovals \in Nat /\ MaxRemovals < Cardinality(Nodes)
       /\ NEVER_READY \subseteq 2..MaxVersion /\ CANARY_BAD \subseteq 2..MaxVersion  \* version 1 is good
       /\ CANARY \in BOOLEAN
       /\ {BUG_REMOVE_KEEPS_PLACEMENTS, BUG_REMOVE_NO_WAIT, BUG_DRAIN_BEFORE_READY, BUG_NO_CANARY_HOLD} \subseteq BOOLEAN

Versions == 1..MaxVersion
VersionsOf(c) == IF c \in Deployable THEN Versions ELSE {1}
Pids     == {<<c, v, n>> \in Components \X Versions \X Nodes : v \in VersionsOf(c)}
CompOf(p) == p[1]
VerOf(p)  == p[2]
NodeOf(p) == p[3]
PidsOf(c) == {p \in Pids : p[1] = c}
PidsOn(n) == {p \in Pids : p[3] = n}

Replicas(c) == IF c \in Exclusive THEN 1 ELSE REPLICAS

\* Enum values, spelled as in rpc/proto/v9/state/v1/state.proto.
NodeStatus == {"READY", "DOWN", "DRAINING", "REMOVED"}   \* REMOVED: no longer in the state (RemoveNode)
Desired    == {"NONE", "RUN", "STOP"}          \* NONE: no such placement (deleted / never made)
Observed   == {"UNSPECIFIED", "STARTING", "RUNNING", "FAILED", "STOPPED", "LOST"}  \* STARTING: see Start
Instance   == {"NONE", "RUNNING", "FAILED"}  \* what the node's executor runs (see Start)

\* How long the leader waits before it declares a silent node down.
DownAfter == IF BUG_NO_LEASE_WAIT THEN LEASE ELSE TTL

VARIABLES
    \* committed (fsm) state
    status,     \* Node.status
    desired,    \* Placement.desired ("NONE" = no placement with that id)
    observed,   \* Placement.observed, as last reported through the leader
    active,     \* Component.active_deployment_id, as a version number
    stable,     \* the version a failed rollout returns to (the last promoted one)
    latest,     \* the newest version deployed (versions only grow; a failed one is never retried)
    promoted,   \* the active version has passed readiness and its canary (or CANARY = FALSE)
    \* leader (volatile, lost on leader change)
    leader,     \* the Raft leader, or NoNode during an election
    hb,         \* ticks since the leader last heard each node's heartbeat (capped at TTL)
    \* node-local state
    up,         \* the node's process (agent + its instances) is alive
    reach,      \* the node can talk to the rest of the cluster (FALSE: partitioned away)
    lease,      \* ticks since the node last got a heartbeat answer (capped at LEASE)
    learned,    \* the node's copy of desired for its own placements (its fsm replica)
    inst,       \* what the node's executor really runs
    \* bookkeeping (history, budgets)
    faults,     \* faults used so far
    drains,     \* drains used so far
    served,     \* components that have had a RUNNING instance of a good version at least once
    removals    \* removals used so far

committed == <<status, desired, observed, active, stable, latest, promoted>>
leaderVars == <<leader, hb>>
nodeVars  == <<up, reach, lease, learned, inst>>
ghost     == <<faults, drains, served, removals>>
vars == <<committed, leaderVars, nodeVars, ghost>>

Min(a, b) == IF a < b THEN a ELSE b

Alive(p)   == inst[p] = "RUNNING"    \* the instance's code is executing
Serving(p) == inst[p] = "RUNNING"    \* the proxy routes requests to it
ExclusiveAliveOn(n) == \E p \in PidsOn(n) : CompOf(p) \in Exclusive /\ Alive(p)

\* A node can exchange messages with the leader (Raft replication, heartbeats, reports).
\* A removed node is not: the leader neither replicates to it nor answers its heartbeats.
Connected(n) == leader # NoNode /\ up[n] /\ reach[n] /\ status[n] # "REMOVED"

\* The Raft voters: every node not removed.
Members == {n \in Nodes : status[n] # "REMOVED"}

\* Placement.epoch: 1 when created, +1 when desired moves RUN -> STOP (sched.setDesired).
Epoch(p) == CASE desired[p] = "RUN"  -> 1
              [] desired[p] = "STOP" -> 2
              [] OTHER               -> 0

-----------------------------------------------------------------------------
(* Init: a fresh cluster, every node READY, every component running with    *)
(* deployment 1 active and no placement yet, no leader elected yet.         *)
Init ==
    /\ status   = [n \in Nodes |-> "READY"]
    /\ desired  = [p \in Pids |-> "NONE"]
    /\ observed = [p \in Pids |-> "UNSPECIFIED"]
    /\ active   = [c \in Components |-> 1]
    /\ stable   = [c \in Components |-> 1]
    /\ latest   = [c \in Components |-> 1]
    /\ promoted = [c \in Components |-> TRUE]
    /\ leader   = NoNode
    /\ hb       = [n \in Nodes |-> 0]
    /\ up       = [n \in Nodes |-> TRUE]
    /\ reach    = [n \in Nodes |-> TRUE]
    /\ lease    = [n \in Nodes |-> LEASE]
    /\ learned  = [p \in Pids |-> "NONE"]
    /\ inst     = [p \in Pids |-> "NONE"]
    /\ faults   = 0
    /\ drains   = 0
    /\ served   = {}
    /\ removals = 0

-----------------------------------------------------------------------------
(***************************************************************************)
(* Raft leadership. A new leader knows only the committed state: it forgets *)
(* when nodes last heartbeated and gives every node a full TTL again.       *)
(***************************************************************************)
Elect(n) ==
    /\ leader = NoNode
    /\ up[n] /\ reach[n] /\ n \in Members
    /\ 2 * Cardinality({m \in Members : up[m] /\ reach[m]}) > Cardinality(Members)
    /\ leader' = n
    /\ hb' = [m \in Nodes |-> 0]
    /\ UNCHANGED <<committed, nodeVars, ghost>>

(***************************************************************************)
(* The leader's scheduler. sched.Schedule is a pure function of the        *)
(* committed state; the leader commits its plan for a component (Put and   *)
(* Delete) as one Raft entry, so one Schedule(c) step is one such plan.    *)
(* Where Go picks nodes deterministically (fewest replicas, least load),   *)
(* the spec lets the scheduler pick any READY node: every choice is        *)
(* checked.                                                                *)
(***************************************************************************)
\* Placements of c's active deployment wanted running on READY nodes ("cur" in sched.go).
Cur(c) == {p \in PidsOf(c) : VerOf(p) = active[c] /\ desired[p] = "RUN" /\ status[NodeOf(p)] = "READY"}

\* Of those, the ones their node reported RUNNING ("newRunning").
CurRunning(c) == {p \in Cur(c) : observed[p] = "RUNNING"}

\* A surplus placement: still desired RUN, but of an older deployment ("old") or on a
\* node that is not READY (DRAINING; a DOWN node's placements are already STOP).
Surplus(c) == {p \in PidsOf(c) : /\ desired[p] = "RUN"
                                 /\ \/ VerOf(p) # active[c]
                                    \/ status[NodeOf(p)] # "READY"}

\* Surge, then drain: surplus placements of a component stop once its active deployment
\* has all its replicas reported RUNNING (ready) on READY nodes, and has passed its canary
\* (promoted). An exclusive component cannot surge (two instances at once): its surplus
\* placement stops at once, and the replacement waits for ExclusiveFree.
DrainOld(c) == CASE BUG_DRAIN_BEFORE_READY -> Cardinality(Cur(c)) >= Replicas(c)
                 [] BUG_NO_CANARY_HOLD     -> Cardinality(CurRunning(c)) >= Replicas(c)
                 [] OTHER -> Cardinality(CurRunning(c)) >= Replicas(c) /\ promoted[c]
StopNow(c) == IF c \in Exclusive \/ DrainOld(c) THEN Surplus(c) ELSE {}

\* A placement lost with its removed node counts as gone for an exclusive component only
\* once the node's lease has surely run out: the leader answers no heartbeat of a removed
\* node, and waits TTL > LEASE ticks of its silence, as MarkDown does.
LeaseOver(p) == status[NodeOf(p)] = "REMOVED" /\ CompOf(p) \in Exclusive
                => BUG_REMOVE_NO_WAIT \/ hb[NodeOf(p)] >= TTL

\* Stopped placements their node reported STOPPED, or LOST ones: deleted.
Gone(c) == {p \in PidsOf(c) : desired[p] = "STOP" /\ observed[p] \in {"STOPPED", "LOST"} /\ LeaseOver(p)}

\* An exclusive component may get a new placement only when every other one is known to
\* be gone: stopped and reported STOPPED by its node, or LOST (its node declared DOWN,
\* which the leader does only after TTL > LEASE ticks of silence, or removed, see
\* LeaseOver).
ExclusiveFree(c) == \A q \in PidsOf(c) : desired[q] = "NONE" \/ q \in Gone(c)

\* Where a new placement of c's active deployment may go: a READY node without one.
Cands(c) == {p \in PidsOf(c) : VerOf(p) = active[c] /\ desired[p] = "NONE"
                               /\ status[NodeOf(p)] = "READY"}

\* How many new placements the plan makes (zero for a blocked exclusive component).
Want(c) == IF c \in Exclusive /\ ~ExclusiveFree(c) THEN 0
           ELSE Min(Replicas(c) - Cardinality(Cur(c)), Cardinality(Cands(c)))

\* Which ones: like sched.go, deterministically, on the least loaded nodes (load: the
\* placements desired RUN on the node). Ties are broken by a fixed (CHOOSE) order, where
\* Go breaks them by node order; faults still put every node in every role.
Load(n) == Cardinality({p \in PidsOn(n) : desired[p] = "RUN"})
RECURSIVE Pick(_, _)
Pick(S, k) == IF k = 0 \/ S = {} THEN {}
              ELSE LET p == CHOOSE x \in S : \A y \in S : Load(NodeOf(x)) <= Load(NodeOf(y))
                   IN {p} \cup Pick(S \ {p}, k - 1)

Schedule(c) ==
    /\ leader # NoNode
    /\ LET new == Pick(Cands(c), Want(c))
           stop == StopNow(c)
           gone == Gone(c)
       IN
          /\ new \cup stop \cup gone # {}          \* the plan is not Empty()
          /\ desired' = [p \in Pids |-> CASE p \in new  -> "RUN"
                                          [] p \in stop -> "STOP"
                                          [] p \in gone -> "NONE"
                                          [] OTHER      -> desired[p]]
          /\ observed' = [p \in Pids |-> IF p \in new \cup gone THEN "UNSPECIFIED"
                                         ELSE observed[p]]
    /\ UNCHANGED <<status, active, stable, latest, promoted, leaderVars, nodeVars, ghost>>

\* SetNodeStatus DOWN (liveness loop): a node silent for DownAfter ticks is declared
\* down; in the same command its placements become desired STOP, observed LOST, so the
\* scheduler replaces them.
MarkDown(n) ==
    /\ leader # NoNode
    /\ n # leader
    /\ status[n] \notin {"DOWN", "REMOVED"}
    /\ hb[n] >= DownAfter
    /\ status'   = [status EXCEPT ![n] = "DOWN"]
    /\ desired'  = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "NONE" THEN "STOP" ELSE desired[p]]
    /\ observed' = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "NONE" THEN "LOST" ELSE observed[p]]
    /\ UNCHANGED <<active, stable, latest, promoted, leaderVars, nodeVars, ghost>>

\* Readiness and the canary (issue 11 part 1). A rollout's new version serves only once
\* ready (Start: a NEVER_READY version's instances fail their readiness check and are
\* reported FAILED, never RUNNING). Ready, it is a canary: it takes a share of the traffic
\* beside the old version, which keeps running (DrainOld) until the proxies' counts
\* promote the new one. A version that fails readiness or its canary is failed, and the
\* component returns to the version it ran before (stable), which never stopped serving.
Promote(c) ==
    /\ leader # NoNode
    /\ ~promoted[c]
    /\ active[c] \notin CANARY_BAD
    /\ Cardinality(CurRunning(c)) >= Replicas(c)
    /\ promoted' = [promoted EXCEPT ![c] = TRUE]
    /\ UNCHANGED <<status, desired, observed, active, stable, latest, leaderVars, nodeVars, ghost>>

RollBack(c) ==
    /\ leader # NoNode
    /\ active[c] # stable[c]
    /\ \/ active[c] \in NEVER_READY /\ \E p \in Cur(c) : observed[p] = "FAILED"
       \/ active[c] \in CANARY_BAD /\ ~promoted[c] /\ CurRunning(c) # {}   \* its canary got traffic
    /\ active'   = [active EXCEPT ![c] = stable[c]]
    /\ promoted' = [promoted EXCEPT ![c] = TRUE]
    /\ UNCHANGED <<status, desired, observed, stable, latest, leaderVars, nodeVars, ghost>>

\* `v9 cluster remove-peer` / `leave` (RemoveNode, then the Raft configuration change): the
\* node leaves the state and the voters, and in the same command its placements become
\* desired STOP, observed LOST, so the scheduler replaces them (an exclusive one only once
\* LeaseOver). Removing the leader: it hands leadership over first (here: steps down in
\* the same step).
Remove(n) ==
    /\ leader # NoNode
    /\ removals < MaxRemovals
    /\ status[n] # "REMOVED"
    /\ status'  = [status EXCEPT ![n] = "REMOVED"]
    /\ IF BUG_REMOVE_KEEPS_PLACEMENTS THEN UNCHANGED <<desired, observed>>
       ELSE /\ desired'  = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "NONE" THEN "STOP" ELSE desired[p]]
            /\ observed' = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "NONE" THEN "LOST" ELSE observed[p]]
    /\ leader'  = IF leader = n THEN NoNode ELSE leader
    /\ removals' = removals + 1
    /\ UNCHANGED <<active, stable, latest, promoted, hb, nodeVars, faults, drains, served>>

\* A removed node that still runs learns it was removed (the leader replicates up to the
\* configuration change that removes it; the node watches its configuration): it stops
\* every instance and serves nothing more.
LearnRemoved(n) ==
    /\ status[n] = "REMOVED"
    /\ up[n] /\ reach[n]
    /\ \E p \in PidsOn(n) : learned[p] # "NONE" \/ inst[p] # "NONE"
    /\ learned' = [p \in Pids |-> IF NodeOf(p) = n THEN "NONE" ELSE learned[p]]
    /\ inst'    = [p \in Pids |-> IF NodeOf(p) = n THEN "NONE" ELSE inst[p]]
    /\ UNCHANGED <<committed, leaderVars, up, reach, lease, ghost>>

(***************************************************************************)
(* Operator actions (not faults, never forced by fairness).                *)
(***************************************************************************)
\* A push built and activated: ActivateDeployment. Starts a rollout (one at a time).
Deploy(c) ==
    /\ leader # NoNode
    /\ c \in Deployable
    /\ promoted[c]
    /\ latest[c] < MaxVersion
    /\ active'   = [active EXCEPT ![c] = latest[c] + 1]
    /\ latest'   = [latest EXCEPT ![c] = latest[c] + 1]
    /\ stable'   = [stable EXCEPT ![c] = active[c]]
    /\ promoted' = [promoted EXCEPT ![c] = ~CANARY]
    /\ UNCHANGED <<status, desired, observed, leaderVars, nodeVars, ghost>>

\* `v9 node drain`: SetNodeStatus DRAINING; the scheduler moves placements off.
Drain(n) ==
    /\ leader # NoNode
    /\ drains < MaxDrains
    /\ status[n] = "READY"
    /\ status' = [status EXCEPT ![n] = "DRAINING"]
    /\ drains' = drains + 1
    /\ UNCHANGED <<desired, observed, active, stable, latest, promoted, leaderVars, nodeVars, faults, served, removals>>

(***************************************************************************)
(* The node: its fsm replica, the reconciler, the heartbeat loop and the   *)
(* lease.                                                                  *)
(***************************************************************************)
\* What the reconciler reports for a placement (reconciler.report).
ObsOf(p) == CASE inst[p] = "RUNNING"  -> "RUNNING"
              [] inst[p] = "FAILED"   -> "FAILED"
              [] learned[p] = "STOP"  -> "STOPPED"
              [] OTHER                -> "UNSPECIFIED"   \* nothing to report yet

\* The reconciler pass that follows every change of the local replica: the node now knows
\* the committed desired state of its placements, and takes down every instance it no
\* longer owns (desired STOP, or deleted) in the same pass (withdrawn from the proxy,
\* killed).
LearnAndStop(n) ==
    /\ learned' = [p \in Pids |-> IF NodeOf(p) = n THEN desired[p] ELSE learned[p]]
    /\ inst'    = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "RUN" THEN "NONE" ELSE inst[p]]

\* Heartbeat RPC to the leader and its answer, one round trip:
\*  - the request carries the node's reports (SetPlacementObserved for every placement
\*    whose observed state it has something to say about, committed by the leader);
\*  - the leader resets its timer for n, and marks a DOWN node READY again;
\*  - the answer carries the leader's commit index: the node's replica catches up to it
\*    (the reconciler acts on it at once), and only then is the lease renewed, so a node
\*    never holds a fresh lease with a stale copy of its placements.
Heartbeat(n) ==
    /\ Connected(n)
    /\ hb'     = [hb EXCEPT ![n] = 0]
    /\ lease'  = [lease EXCEPT ![n] = 0]
    /\ status' = IF status[n] = "DOWN" THEN [status EXCEPT ![n] = "READY"] ELSE status
    /\ observed' = [p \in Pids |-> IF NodeOf(p) = n /\ desired[p] # "NONE" /\ ObsOf(p) # "UNSPECIFIED"
                                   THEN ObsOf(p) ELSE observed[p]]
    /\ LearnAndStop(n)
    /\ UNCHANGED <<desired, active, stable, latest, promoted, leader, up, reach, ghost>>

\* The reconciler starts an instance of a placement it has learned is desired RUN (again
\* after a failure: restart with backoff), and once it is ready the proxy routes to it.
\* Start and readiness are one step here: an instance that is started but not yet ready
\* counts as running for exclusivity (its code executes) and as not serving for rollouts
\* (observed STARTING), and one step keeps both checks on the safe side. An exclusive
\* instance needs a valid lease.
Start(p) ==
    LET n == NodeOf(p) IN
    /\ up[n]
    /\ learned[p] = "RUN"
    /\ inst[p] \in {"NONE", "FAILED"}
    /\ CompOf(p) \in Exclusive => lease[n] < LEASE
    /\ IF VerOf(p) \in NEVER_READY /\ CompOf(p) \in Deployable
       THEN /\ inst[p] = "NONE"                   \* started, readiness failed: never routed to
            /\ inst' = [inst EXCEPT ![p] = "FAILED"]
            /\ UNCHANGED served
       ELSE /\ inst'   = [inst EXCEPT ![p] = "RUNNING"]
            /\ served' = IF VerOf(p) \in CANARY_BAD /\ CompOf(p) \in Deployable THEN served
                          ELSE served \cup {CompOf(p)}     \* a good version has served
    /\ UNCHANGED <<committed, leaderVars, up, reach, lease, learned, faults, drains, removals>>

\* Lease self-fencing: a node that has not heard the leader for LEASE ticks stops its
\* exclusive instances by itself (it keeps serving the others: static stability).
SelfFence(n) ==
    /\ up[n]
    /\ lease[n] = LEASE
    /\ ExclusiveAliveOn(n)
    /\ inst' = [p \in Pids |-> IF NodeOf(p) = n /\ CompOf(p) \in Exclusive /\ Alive(p)
                               THEN "NONE" ELSE inst[p]]
    /\ UNCHANGED <<committed, leaderVars, up, reach, lease, learned, ghost>>

(***************************************************************************)
(* Time. One tick advances every timer. A tick waits for the steps that    *)
(* the protocol requires to happen within a tick:                          *)
(*  - a node whose lease has expired has fenced its exclusive instances    *)
(*    (its local clock and the leader's run at the same rate; the margin   *)
(*    TTL - LEASE absorbs drift and the time the stop takes);              *)
(*  - every node connected to a leader has heartbeated since the last      *)
(*    tick (a node that misses heartbeats is modelled as partitioned).     *)
(* Time only matters while some node is silent (crashed, partitioned, or  *)
(* no leader): while every node is connected, each heartbeats within each  *)
(* tick, no timer can reach LEASE or TTL, and ticks would only add copies  *)
(* of the same states, so they are not taken then.                         *)
(***************************************************************************)
Tick ==
    /\ \E n \in Nodes : ~Connected(n)    \* see above: time only matters for a silent node
    /\ \A n \in Nodes : up[n] /\ lease[n] = LEASE => ~ExclusiveAliveOn(n)
    /\ \A n \in Nodes : Connected(n) => hb[n] = 0
    /\ hb'    = IF leader = NoNode THEN hb ELSE [n \in Nodes |-> Min(hb[n] + 1, TTL)]
    /\ lease' = [n \in Nodes |-> IF up[n] THEN Min(lease[n] + 1, LEASE) ELSE LEASE]
    /\ <<hb', lease'>> # <<hb, lease>>
    /\ UNCHANGED <<committed, leader, up, reach, learned, inst, ghost>>

(***************************************************************************)
(* Faults (a finite budget, so they eventually stop) and recoveries.       *)
(***************************************************************************)
\* The machine dies: its instances die with it; its replica (on disk) survives.
Crash(n) ==
    /\ faults < MaxFaults
    /\ up[n]
    /\ up'     = [up EXCEPT ![n] = FALSE]
    /\ inst'   = [p \in Pids |-> IF NodeOf(p) = n THEN "NONE" ELSE inst[p]]
    /\ lease'  = [lease EXCEPT ![n] = LEASE]
    /\ leader' = IF leader = n THEN NoNode ELSE leader
    /\ faults' = faults + 1
    /\ UNCHANGED <<committed, hb, reach, learned, drains, served, removals>>

\* The node restarts with an expired lease; the reconciler acts on its replica (which
\* may be stale) for non-exclusive components until it hears from the leader.
Restart(n) ==
    /\ ~up[n]
    /\ up' = [up EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<committed, leaderVars, reach, lease, learned, inst, ghost>>

\* A partition cuts the node off from the others (and so from the leader). A leader cut
\* off steps down (hashicorp/raft: LeaderLeaseTimeout); it answers no heartbeat after.
Isolate(n) ==
    /\ faults < MaxFaults
    /\ up[n] /\ reach[n]
    /\ reach'  = [reach EXCEPT ![n] = FALSE]
    /\ leader' = IF leader = n THEN NoNode ELSE leader
    /\ faults' = faults + 1
    /\ UNCHANGED <<committed, hb, up, lease, learned, inst, drains, served, removals>>

Heal(n) ==
    /\ ~reach[n]
    /\ reach' = [reach EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<committed, leaderVars, up, lease, learned, inst, ghost>>

\* The instance's process exits or never gets ready (reported FAILED, restarted).
InstanceFail(p) ==
    /\ INSTANCE_FAULTS
    /\ faults < MaxFaults
    /\ Alive(p)
    /\ inst'   = [inst EXCEPT ![p] = "FAILED"]
    /\ faults' = faults + 1
    /\ UNCHANGED <<committed, leaderVars, up, reach, lease, learned, drains, served, removals>>

-----------------------------------------------------------------------------
Next ==
    \/ \E n \in Nodes : Elect(n) \/ MarkDown(n) \/ Drain(n) \/ Heartbeat(n)
                        \/ SelfFence(n) \/ Crash(n) \/ Restart(n) \/ Isolate(n) \/ Heal(n)
                        \/ Remove(n) \/ LearnRemoved(n)
    \/ \E c \in Components : Schedule(c) \/ Deploy(c) \/ Promote(c) \/ RollBack(c)
    \/ \E p \in Pids : Start(p) \/ InstanceFail(p)
    \/ Tick

\* Everything but faults, operator actions and ticks is weakly fair; recoveries too,
\* so once the fault budget is spent every node is eventually up and connected. Time
\* passes (Tick is strongly fair: it is enabled again and again, between heartbeats),
\* which only a removed node's lease needs: nothing else waits for ticks to converge.
Fairness ==
    /\ \A n \in Nodes : /\ WF_vars(Elect(n)) /\ WF_vars(MarkDown(n))
                        /\ WF_vars(Heartbeat(n)) /\ WF_vars(SelfFence(n))
                        /\ WF_vars(Restart(n)) /\ WF_vars(Heal(n))
                        /\ WF_vars(LearnRemoved(n))
    /\ \A c \in Components : WF_vars(Schedule(c)) /\ WF_vars(Promote(c)) /\ WF_vars(RollBack(c))
    /\ \A p \in Pids : WF_vars(Start(p))
    /\ SF_vars(Tick)

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(***************************************************************************)
(* Safety.                                                                 *)
(***************************************************************************)
TypeOK ==
    /\ status   \in [Nodes -> NodeStatus]
    /\ desired  \in [Pids -> Desired]
    /\ observed \in [Pids -> Observed]
    /\ active   \in [Components -> Versions]
    /\ stable   \in [Components -> Versions]
    /\ latest   \in [Components -> Versions]
    /\ promoted \in [Components -> BOOLEAN]
    /\ leader   \in Nodes \cup {NoNode}
    /\ hb       \in [Nodes -> 0..TTL]
    /\ up       \in [Nodes -> BOOLEAN]
    /\ reach    \in [Nodes -> BOOLEAN]
    /\ lease    \in [Nodes -> 0..LEASE]
    /\ learned  \in [Pids -> Desired]
    /\ inst     \in [Pids -> Instance]
    /\ faults   \in 0..MaxFaults
    /\ drains   \in 0..MaxDrains
    /\ served   \subseteq Components
    /\ removals \in 0..MaxRemovals
    \* the leader is a live, connected node
    /\ leader # NoNode => up[leader] /\ reach[leader]
    \* a deleted placement carries no observed state
    /\ \A p \in Pids : desired[p] = "NONE" => observed[p] = "UNSPECIFIED"

\* An exclusive component never has two executing instances, partitions included.
ExclusiveNeverTwice ==
    \A c \in Exclusive : Cardinality({p \in PidsOf(c) : Alive(p)}) <= 1

\* A node runs an instance only of a placement that is committed to it as desired RUN,
\* or that its replica still shows as RUN (it has not yet learned it was stopped).
RunsOnlyOwned ==
    \A p \in Pids : Alive(p) => \/ desired[p] = "RUN"
                                \/ learned[p] = "RUN" /\ learned[p] # desired[p]

\* A node that has learned a placement is stopped, lost (desired STOP) or deleted does not
\* run it.
StopsWhatItLearns ==
    \A p \in Pids : learned[p] # "RUN" => ~Alive(p)

\* The same as a step property: in the step where a node learns that a placement it was
\* running is stopped, lost or deleted (its replica moves off RUN), the instance is gone
\* after the step (reconciler: stop in the pass that follows the change).
StopsOnLearning ==
    [][\A p \in Pids : (learned[p] = "RUN" /\ learned'[p] # "RUN") => ~(inst'[p] = "RUNNING")]_vars

\* The lemma behind ExclusiveNeverTwice: once the leader has declared an exclusive
\* placement LOST (the only way, besides a STOPPED report, that frees the component for
\* a replacement), its node no longer runs it.
LostExclusiveFenced ==
    \A p \in Pids : CompOf(p) \in Exclusive /\ observed[p] = "LOST" /\ LeaseOver(p) => ~Alive(p)

\* Removal: in the step that removes a node, its placements are lost (desired STOP,
\* observed LOST), so none of them is still wanted there and the scheduler replaces them.
RemovedHoldsNothing ==
    \A p \in Pids : status[NodeOf(p)] = "REMOVED" /\ desired[p] # "NONE"
                   => desired[p] = "STOP" /\ observed[p] = "LOST"

\* Health-gated rollout: with no fault and no removal, a non-exclusive component that has
\* served once always has an instance serving of a version that is not bad: a version
\* that never becomes ready never takes traffic (it never is RUNNING) and the old one
\* keeps serving; a failed canary leaves the old version serving, and the component
\* returns to it.
AGoodVersionServes ==
    faults = 0 /\ removals = 0 =>
        \A c \in served \ Exclusive :
            \E p \in PidsOf(c) : Serving(p) /\ ~(CompOf(p) \in Deployable /\ VerOf(p) \in CANARY_BAD)

\* A version that never passes readiness never takes traffic.
NeverReadyNeverServes ==
    \A p \in Pids : CompOf(p) \in Deployable /\ VerOf(p) \in NEVER_READY => ~Serving(p)

\* A failed version is never active once rolled back, and never taken up again.
FailedStaysFailed ==
    \A c \in Components : promoted[c] => active[c] \notin NEVER_READY \cup CANARY_BAD

\* With no fault so far, a non-exclusive component that has served once always has a
\* serving instance: rollouts and drains surge first and stop the old ones after.
\* (An exclusive component cannot surge: its rollouts stop first and start after.)
RolloutKeepsServing ==
    faults = 0 /\ removals = 0 =>
        \A c \in served \ Exclusive : \E p \in PidsOf(c) : Serving(p)

(***************************************************************************)
(* Liveness.                                                               *)
(***************************************************************************)
\* Instances of c's active deployment serving on live READY nodes as committed.
ServingActive(c) ==
    {p \in PidsOf(c) : /\ VerOf(p) = active[c] /\ desired[p] = "RUN" /\ Serving(p)
                       /\ up[NodeOf(p)] /\ status[NodeOf(p)] = "READY"}

Converged ==
    \A c \in Components :
        /\ Cardinality(ServingActive(c)) = Replicas(c)
        /\ \A p \in PidsOf(c) : Alive(p) => p \in ServingActive(c)

\* Once faults, deploys and drains stop, every component runs its desired replicas of
\* its active deployment on live nodes, and nothing else of it runs.
EventuallyConverges == <>[]Converged

\* Symmetry of node ids (only for safety checks; see README).
NodeSymmetry == Permutations(Nodes)
=============================================================================
