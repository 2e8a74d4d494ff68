// Package numbering is lantel's number domain: the number plan, the
// reservation, user, terminal and server tables, and the operations of
// LTNP/1 (register, deregister, query) plus the binding of numbers to DHCP
// leases.
//
// Every operation that reads or changes state is a function of a store.Tx
// and of the time now, so that the caller (lantel's service) makes a lease
// and a number binding one transaction and owns the one clock. A function
// that refuses returns a *domain.Error and has written nothing; that is the
// contract the group committer relies on to commit the rest of a group.
//
// The Directory also keeps a live view of the terminal table in memory (see
// mirror.go), changed only by OnCommit hooks (and, on etcd, by other
// nodes' commits: remote.go), from which QUERYs for
// online numbers and the counts by state are answered without a
// transaction.
//
// Files by concern: plan.go (number plan and pool), records.go (table
// records and their encoding), buckets.go (bucket layout), register.go,
// query.go, lease.go and expire.go (the operations), bindings.go (writing a
// binding and its indexes), static.go (entries of the configuration file),
// edit.go (run-time edits of the tables), list.go (what an administrator
// sees), mirror.go (the live view).
//
// The package knows nothing of DHCP, of UDP, of HTTP or of a main.
package numbering
