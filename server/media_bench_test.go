package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/blobtest"
	"github.com/parley-chat/parley/internal/s3test"
	"github.com/parley-chat/parley/server"
)

// BenchmarkMedia measures uploads and downloads of one file at a time
// through a whole server (loopback HTTP, SQLite metadata), to a directory
// and to S3 (versitygw), and the heap growth while they run:
//
//	go test -run '^$' -bench Media -benchtime 3x ./server
func BenchmarkMedia(b *testing.B) {
	stores := map[string]func(b *testing.B) func(*server.Config){
		"dir": func(b *testing.B) func(*server.Config) { return nil },
		"s3": func(b *testing.B) func(*server.Config) {
			s3 := s3test.Start(b)
			url := s3.URL(b, "bench")
			return func(c *server.Config) { c.Media, c.MediaQuota = url, 64<<30 }
		},
	}
	for _, store := range []string{"dir", "s3"} {
		b.Run(store, func(b *testing.B) {
			edit := stores[store](b)
			srv := apitest.MustStart(b, "sqlite", func(c *server.Config) {
				c.MediaQuota = 64 << 30
				if edit != nil {
					edit(c)
				}
			})
			ann := apitest.Register(b, srv.URL(), apitest.Unique("ann"))
			ann.HTTP.Timeout = 5 * time.Minute
			for _, mib := range []int64{1, 16, 100} {
				size := mib << 20
				typ := "document"
				var id string
				b.Run(fmt.Sprintf("upload-%dMiB", mib), func(b *testing.B) {
					b.SetBytes(size)
					worst := 0.0
					for b.Loop() {
						h := blobtest.StartHeapPeak()
						status, env := upload(b, ann, metadata(typ, size), part{"file", io.LimitReader(zeros{}, size)})
						worst = max(worst, h.GrowthMiB())
						if status != 201 {
							b.Fatalf("upload: %d %+v", status, env)
						}
						var r uploadRes
						_ = json.Unmarshal(env.Data, &r)
						id = r.FileID
					}
					b.ReportMetric(worst, "heap-MiB")
				})
				b.Run(fmt.Sprintf("download-%dMiB", mib), func(b *testing.B) {
					b.SetBytes(size)
					worst := 0.0
					for b.Loop() {
						h := blobtest.StartHeapPeak()
						req, _ := http.NewRequest("GET", ann.Base+"/api/media/"+id+"/content", nil)
						req.Header.Set("Authorization", "Bearer "+ann.Token)
						res, err := ann.HTTP.Do(req)
						if err != nil {
							b.Fatal(err)
						}
						n, _ := io.Copy(io.Discard, res.Body)
						res.Body.Close()
						worst = max(worst, h.GrowthMiB())
						if res.StatusCode != 200 || n != size {
							b.Fatalf("download: %d, %d bytes", res.StatusCode, n)
						}
					}
					b.ReportMetric(worst, "heap-MiB")
				})
			}
		})
	}
}

// BenchmarkMediaConcurrent uploads 200 images of 1 MiB at once to a
// directory and reports the p99 latency and the heap's peak growth:
//
//	go test -run '^$' -bench MediaConcurrent -benchtime 1x ./server
func BenchmarkMediaConcurrent(b *testing.B) {
	const uploads, size = 200, 1 << 20
	srv := apitest.MustStart(b, "sqlite", func(c *server.Config) { c.MediaQuota = 64 << 30 })
	users := make([]*apitest.Client, 20)
	for i := range users {
		users[i] = apitest.Register(b, srv.URL(), apitest.Unique(fmt.Sprintf("u%d", i)))
		users[i].HTTP = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: uploads}}
	}
	for b.Loop() {
		h := blobtest.StartHeapPeak()
		lat := make([]time.Duration, uploads)
		var failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := range uploads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				status, _ := upload(b, users[i%len(users)], metadata("image", size), part{"file", io.LimitReader(zeros{}, size)})
				lat[i] = time.Since(t0)
				if status != 201 {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		growth := h.GrowthMiB()
		if failed.Load() > 0 {
			b.Fatalf("%d of %d uploads failed", failed.Load(), uploads)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[uploads*50/100].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[uploads*99/100-1].Milliseconds()), "p99-ms")
		b.ReportMetric(float64(uploads*size)/(1<<20)/elapsed.Seconds(), "MiB/s")
		b.ReportMetric(growth, "heap-MiB")
	}
}
