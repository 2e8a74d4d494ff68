package etcdstore

import (
	"context"
	"fmt"
	"time"

	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LoadFile is `lanteld -etcd-load`: it reads every page of the bbolt file
// at path (a damaged file is store.ErrDamaged, and nothing is written),
// connects to the cluster cfg names and copies the file into cfg.Prefix
// (Load).
func LoadFile(cfg Config, path string) (int, error) {
	if err := boltstore.Walk(path); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	cli, err := cfg.dial()
	if err != nil {
		return 0, err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return Load(ctx, cli, cfg.Prefix, path, 100)
}

// Load copies every table of the bbolt file at path (a lantel store or a
// backup of either engine) into prefix, which must be empty (else
// store.ErrNotEmpty): the way from one box to a cluster, and the restore
// of a backup. Stop every lanteld node of the prefix first. Keys go in Txns of at most batch changes
// (etcd's max-txn-ops: 128 by default); the prefix's rev key is written
// last, so a node started before the end sees an incomplete prefix only if
// it ignores this instruction. It returns the number of keys copied.
func Load(ctx context.Context, cli *clientv3.Client, prefix, path string, batch int) (int, error) {
	if batch <= 0 {
		batch = 100
	}
	data := prefix + "b/"
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd: %w", err)
	}
	if resp.Count != 0 {
		return 0, fmt.Errorf("%w: %s holds %d keys", store.ErrNotEmpty, prefix, resp.Count)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer func() { _ = db.Close() }()
	n := 0
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				ops = append(ops, clientv3.OpPut(data+string(name)+"/"+string(k), string(v)))
				n++
				if len(ops) >= batch {
					return flush()
				}
				return nil
			})
		})
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		_, err = cli.Put(ctx, prefix+"rev", "")
	}
	if err != nil {
		return n, fmt.Errorf("etcd: load %s: %w", path, err)
	}
	return n, nil
}
