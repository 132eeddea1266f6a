package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// TokenBucket is Firecracker's token bucket body: size tokens refilled
// over refill_time milliseconds, one_time_burst extra tokens once. A
// bucket with size or refill_time 0 removes that limit.
type TokenBucket struct {
	Size         *uint64 `json:"size"`
	OneTimeBurst uint64  `json:"one_time_burst,omitempty"`
	RefillTime   *uint64 `json:"refill_time"` // milliseconds
}

// RateLimiter is Firecracker's rate limiter body: bandwidth counts bytes,
// ops requests (frames for a network interface). A bucket left out is
// left as it is.
type RateLimiter struct {
	Bandwidth *TokenBucket `json:"bandwidth,omitempty"`
	Ops       *TokenBucket `json:"ops,omitempty"`
}

// maxRefillMS keeps refill_time*1ms inside a time.Duration.
const maxRefillMS = uint64(1<<63-1) / uint64(time.Millisecond)

// Config converts the body to the limiter's configuration.
func (r *RateLimiter) Config() (ratelimit.Config, error) {
	var c ratelimit.Config
	if r == nil {
		return c, nil
	}
	var err error
	if c.Bandwidth, err = r.Bandwidth.bucket("bandwidth"); err != nil {
		return c, err
	}
	if c.Ops, err = r.Ops.bucket("ops"); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func (b *TokenBucket) bucket(name string) (*ratelimit.Bucket, error) {
	if b == nil {
		return nil, nil
	}
	if b.Size == nil || b.RefillTime == nil {
		return nil, fmt.Errorf("%s: a token bucket needs \"size\" and \"refill_time\" (milliseconds)", name)
	}
	if *b.RefillTime > maxRefillMS {
		return nil, fmt.Errorf("%s: refill_time of %d ms is too long", name, *b.RefillTime)
	}
	return &ratelimit.Bucket{
		Size:         *b.Size,
		OneTimeBurst: b.OneTimeBurst,
		RefillTime:   time.Duration(*b.RefillTime) * time.Millisecond,
	}, nil
}

// RateLimitController is the part of Controller that changes rate limits;
// the ids are those of vmm.VM.SetDriveRateLimit and SetNetRateLimits.
type RateLimitController interface {
	SetDriveRateLimit(id string, rl ratelimit.Config) error
	SetNetRateLimits(id string, rx, tx ratelimit.Config) error
	SetRNGRateLimit(rl ratelimit.Config) error
}

// rateLimitRoutes adds PATCH /drives/{id}, PATCH /network-interfaces/{id}
// and PATCH /entropy.
func rateLimitRoutes(mux *http.ServeMux, c RateLimitController) {
	mux.HandleFunc("PATCH /drives/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var req struct {
			DriveID     *string      `json:"drive_id"`
			RateLimiter *RateLimiter `json:"rate_limiter"`
		}
		if decode(w, r, &req) != nil {
			return
		}
		if err := matchID("drive_id", req.DriveID, id); err != nil {
			fault(w, http.StatusBadRequest, err)
			return
		}
		rl, err := req.RateLimiter.Config()
		if err == nil {
			err = c.SetDriveRateLimit(id, rl)
		}
		done(w, err)
	})
	mux.HandleFunc("PATCH /network-interfaces/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var req struct {
			IfaceID *string      `json:"iface_id"`
			Rx      *RateLimiter `json:"rx_rate_limiter"`
			Tx      *RateLimiter `json:"tx_rate_limiter"`
		}
		if decode(w, r, &req) != nil {
			return
		}
		if err := matchID("iface_id", req.IfaceID, id); err != nil {
			fault(w, http.StatusBadRequest, err)
			return
		}
		rx, err := req.Rx.Config()
		if err != nil {
			fault(w, http.StatusBadRequest, fmt.Errorf("rx_rate_limiter: %w", err))
			return
		}
		tx, err := req.Tx.Config()
		if err != nil {
			fault(w, http.StatusBadRequest, fmt.Errorf("tx_rate_limiter: %w", err))
			return
		}
		done(w, c.SetNetRateLimits(id, rx, tx))
	})
	mux.HandleFunc("PATCH /entropy", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RateLimiter *RateLimiter `json:"rate_limiter"`
		}
		if decode(w, r, &req) != nil {
			return
		}
		rl, err := req.RateLimiter.Config()
		if err == nil {
			err = c.SetRNGRateLimit(rl)
		}
		done(w, err)
	})
}

// matchID checks that an id repeated in the body, as Firecracker's
// clients send it, is the one in the path.
func matchID(field string, body *string, path string) error {
	if body != nil && *body != path {
		return fmt.Errorf("%s %q in the body differs from %q in the path", field, *body, path)
	}
	return nil
}

// done answers 204, or the fault for err.
func done(w http.ResponseWriter, err error) {
	if err != nil {
		code := status(err)
		if errors.Is(err, ratelimit.ErrBadConfig) {
			code = http.StatusBadRequest
		}
		fault(w, code, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
