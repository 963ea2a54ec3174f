package mongodb

import (
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// replSetStatus is the part of replSetGetStatus the probe reads.
type replSetStatus struct {
	Set     string         `bson:"set"`
	MyState int            `bson:"myState"`
	Term    int64          `bson:"term"` // absent before protocol version 1
	Members []statusMember `bson:"members"`
}

type statusMember struct {
	ID       int     `bson:"_id"`
	Name     string  `bson:"name"`
	Health   float64 `bson:"health"`
	State    int     `bson:"state"`
	StateStr string  `bson:"stateStr"`
	// OptimeDate is when the member last applied a write; arbiters have
	// none, and an unreachable member shows the epoch.
	OptimeDate time.Time `bson:"optimeDate"`
}

// hasOptime reports whether the member's optime means anything: mongod
// zeroes it (1970) for members it cannot reach.
func (m statusMember) hasOptime() bool { return m.OptimeDate.Unix() > 0 }

// replSetConfig is the answer of replSetGetConfig.
type replSetConfig struct {
	Config struct {
		ID      string         `bson:"_id"`
		Version int64          `bson:"version"`
		Members []configMember `bson:"members"`
	} `bson:"config"`
}

type configMember struct {
	ID          int    `bson:"_id"`
	Host        string `bson:"host"`
	ArbiterOnly bool   `bson:"arbiterOnly"`
	Hidden      bool   `bson:"hidden"`
	// Priority and Votes are always written by mongod; nil means a
	// hand-made document that relies on the defaults.
	Priority *float64          `bson:"priority"`
	Votes    *int              `bson:"votes"`
	Tags     map[string]string `bson:"tags"`
	// SecondaryDelaySecs is MongoDB 5.0's name for slaveDelay.
	SecondaryDelaySecs int64 `bson:"secondaryDelaySecs"`
	SlaveDelay         int64 `bson:"slaveDelay"`
}

// delay is the member's configured replication delay in seconds.
func (m configMember) delay() int64 { return max(m.SecondaryDelaySecs, m.SlaveDelay) }

// votes and priority apply mongod's defaults: one vote, priority 1 (0 for an arbiter).
func (m configMember) votes() int {
	if m.Votes == nil {
		return 1
	}
	return *m.Votes
}

func (m configMember) priority() float64 {
	switch {
	case m.Priority != nil:
		return *m.Priority
	case m.ArbiterOnly:
		return 0
	default:
		return 1
	}
}

// helloReply is the part of a member's own hello the probe reads.
type helloReply struct {
	IsWritablePrimary bool   `bson:"isWritablePrimary"`
	LegacyIsMaster    bool   `bson:"ismaster"`
	SetName           string `bson:"setName"`
	Me                string `bson:"me"`
	Primary           string `bson:"primary"`
}

func (h helloReply) primary() bool { return h.IsWritablePrimary || h.LegacyIsMaster }

func decodeStatus(raw bson.Raw) (replSetStatus, error) {
	var s replSetStatus
	if err := bson.Unmarshal(raw, &s); err != nil {
		return replSetStatus{}, fmt.Errorf("decoding replSetGetStatus: %w", err)
	}
	if len(s.Members) == 0 {
		return replSetStatus{}, errors.New("replSetGetStatus lists no members")
	}
	return s, nil
}

func decodeConfig(raw bson.Raw) (replSetConfig, error) {
	var c replSetConfig
	if err := bson.Unmarshal(raw, &c); err != nil {
		return replSetConfig{}, fmt.Errorf("decoding replSetGetConfig: %w", err)
	}
	if len(c.Config.Members) == 0 {
		return replSetConfig{}, errors.New("replSetGetConfig lists no members")
	}
	return c, nil
}

func decodeHello(raw bson.Raw) (helloReply, error) {
	var h helloReply
	if err := bson.Unmarshal(raw, &h); err != nil {
		return helloReply{}, fmt.Errorf("decoding hello: %w", err)
	}
	return h, nil
}
