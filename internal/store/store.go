// Package store keeps sandbox records in a bbolt file; every acknowledged
// write is on disk (fsynced) before it returns.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

var bucket = []byte("sandboxes")

var _ sandbox.Store = (*Bolt)(nil)

// Bolt is a record store in one bbolt file.
type Bolt struct{ db *bolt.DB }

// Open opens or creates the store at path. Only one process may hold it.
func Open(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s (is another daemon using this data dir?): %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

// Put stores v as JSON under key.
func (b *Bolt) Put(_ context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), data) })
}

// Get decodes the value under key into v; ErrNotFound if there is none.
func (b *Bolt) Get(_ context.Context, key string, v any) error {
	return b.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucket).Get([]byte(key))
		if data == nil {
			return fmt.Errorf("record %q: %w", key, errdefs.ErrNotFound)
		}
		return json.Unmarshal(data, v)
	})
}

// Delete removes key; a missing key is not an error.
func (b *Bolt) Delete(_ context.Context, key string) error {
	return b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) })
}

// Each calls fn with every key and raw JSON value, in key order.
func (b *Bolt) Each(_ context.Context, fn func(key string, raw []byte) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}
