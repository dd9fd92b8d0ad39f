package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// S3Config locates a bucket on an S3-compatible server.
type S3Config struct {
	Endpoint             string // host:port
	Bucket               string
	Prefix               string // optional key prefix inside the bucket
	AccessKey, SecretKey string
	Insecure             bool // plain HTTP
	Region               string
}

// S3 is a store in an S3-compatible bucket. Objects are uploaded streamed,
// in parallel multipart parts for large ones; S3 makes an object visible
// only once its upload completes.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

var _ Store = (*S3)(nil)

// partSize is the multipart part size: uploads of unknown length buffer
// one part per upload thread.
const partSize = 16 << 20

// OpenS3 connects to the bucket, creating it if it does not exist.
// Unreachable servers and refused credentials are errdefs.ErrUnavailable.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3 blob store: no bucket: %w", errdefs.ErrInvalidArgument)
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
		// A server that is down fails a call in about a second, not ten.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 blob store %s: %w: %w", cfg.Endpoint, err, errdefs.ErrInvalidArgument)
	}
	s := &S3{c: c, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/")}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, s.err("open bucket "+cfg.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, s.err("create bucket "+cfg.Bucket, err)
		}
	}
	return s, nil
}

func (s *S3) key(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return key, nil
	}
	return s.prefix + "/" + key, nil
}

// err maps an S3 failure to a category: a missing key is not_found; a
// server that is down or refuses the credentials is unavailable.
func (s *S3) err(op string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidBucketName", "XMinioInvalidObjectName":
		return fmt.Errorf("%s: %s: %w", op, resp.Message, errdefs.ErrInvalidArgument)
	case "NoSuchKey", "NoSuchBucket":
		return fmt.Errorf("%s: %s: %w", op, resp.Message, errdefs.ErrNotFound)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("%s: the S3 server refused the credentials (%s): %w", op, resp.Code, errdefs.ErrUnavailable)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode >= 500 {
		return fmt.Errorf("%s: S3 server unreachable: %w: %w", op, err, errdefs.ErrUnavailable)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, errors.Join(err, errdefs.ErrDeadlineExceeded))
	}
	return fmt.Errorf("%s: %w: %w", op, err, errdefs.ErrUnavailable)
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.c.PutObject(ctx, s.bucket, k, r, -1, minio.PutObjectOptions{
		PartSize:    partSize,
		NumThreads:  4,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return s.err("put "+key, err)
	}
	return nil
}

func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.err("get "+key, err)
	}
	// GetObject is lazy: Stat makes a missing key fail here, not mid-read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.err("get "+key, err)
	}
	return obj, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, k, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.err("", err), errdefs.ErrNotFound) {
			return nil
		}
		return s.err("delete "+key, err)
	}
	return nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	var keys []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.err("list "+prefix, obj.Err)
		}
		k := obj.Key
		if s.prefix != "" {
			k = strings.TrimPrefix(k, s.prefix+"/")
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}
