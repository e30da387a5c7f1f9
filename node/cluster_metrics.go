package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creto-systems/creto/services/consensus"
)

// clusterMetrics exports the consensus member's state at each scrape, from
// one GetClusterStatus: what an operator alerts on (no leader, a member
// missing, the commit index stuck) and the timestamp oracle's progress.
type clusterMetrics struct{ c *cluster }

var (
	metricRaftState = prometheus.NewDesc("consensus_raft_state",
		"This node's raft state: 1 for the current one.", []string{"state"}, nil)
	metricLeaderKnown = prometheus.NewDesc("consensus_leader_known",
		"1 when this node knows a leader.", nil, nil)
	metricWritable = prometheus.NewDesc("consensus_writable",
		"1 when this node leads and a quorum confirmed it recently: it takes writes and serves timestamps.", nil, nil)
	metricTerm = prometheus.NewDesc("consensus_raft_term",
		"The current raft term.", nil, nil)
	metricCommitIndex = prometheus.NewDesc("consensus_raft_commit_index",
		"This node's commit index.", nil, nil)
	metricAppliedIndex = prometheus.NewDesc("consensus_raft_applied_index",
		"The last raft entry this node's state reflects.", nil, nil)
	metricLastLogIndex = prometheus.NewDesc("consensus_raft_last_log_index",
		"The last entry in this node's raft log.", nil, nil)
	metricMembers = prometheus.NewDesc("consensus_raft_members",
		"Members of the cluster's configuration, by suffrage.", []string{"suffrage"}, nil)
	metricTSOLogical = prometheus.NewDesc("consensus_tso_last_logical",
		"The Logical value of the last timestamp this node's oracle issued.", nil, nil)
	metricTSOHighWater = prometheus.NewDesc("consensus_tso_high_water_milliseconds",
		"The committed high-water mark (Unix ms) under which this node serves timestamps; 0 while it does not.", nil, nil)
)

// Describe implements prometheus.Collector.
func (clusterMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{metricRaftState, metricLeaderKnown, metricWritable, metricTerm, metricCommitIndex,
		metricAppliedIndex, metricLastLogIndex, metricMembers, metricTSOLogical, metricTSOHighWater} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	st, err := m.c.node.GetClusterStatus(context.Background(), m.c.self)
	if err != nil {
		return // a closed node exports nothing rather than zeros
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, r := range []consensus.Role{consensus.RoleLeader, consensus.RoleFollower, consensus.RoleCandidate, consensus.RoleShutdown} {
		gauge(metricRaftState, flag(st.Role == r), string(r))
	}
	gauge(metricLeaderKnown, flag(st.LeaderID != ""))
	gauge(metricWritable, flag(st.Writable))
	gauge(metricTerm, float64(st.Term))
	gauge(metricCommitIndex, float64(st.CommitIndex))
	gauge(metricAppliedIndex, float64(st.AppliedIndex))
	gauge(metricLastLogIndex, float64(st.LastLogIndex))
	count := map[consensus.Suffrage]int{}
	for _, mem := range st.Members {
		count[mem.Suffrage]++
	}
	for _, s := range []consensus.Suffrage{consensus.Voter, consensus.Nonvoter, consensus.Staging} {
		gauge(metricMembers, float64(count[s]), string(s))
	}
	gauge(metricTSOLogical, float64(st.LastTimestamp))
	gauge(metricTSOHighWater, float64(st.HighWaterMark))
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
