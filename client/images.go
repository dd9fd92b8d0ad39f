package client

import (
	"context"
	"fmt"
	"io"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Images lists the images sandboxes can be created from, sorted by name.
func (c *Client) Images(ctx context.Context) ([]*hutchv1.Image, error) {
	resp, err := c.images.ListImages(ctx, connect.NewRequest(&hutchv1.ListImagesRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Images, nil
}

// PullImage has the daemon fetch ref from its registry and store it as
// name, writing progress lines to progress (nil: discarded).
func (c *Client) PullImage(ctx context.Context, ref, name string, progress io.Writer) (*hutchv1.Image, error) {
	stream, err := c.images.PullImage(ctx, connect.NewRequest(&hutchv1.PullImageRequest{Ref: ref, Name: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return imageResult(stream, "pull "+ref, progress)
}

// BuildDefaultImage has the daemon build the default image from its recipe
// unless it is current (a build takes minutes), writing progress lines to
// progress (nil: discarded).
func (c *Client) BuildDefaultImage(ctx context.Context, progress io.Writer) (*hutchv1.Image, error) {
	stream, err := c.images.BuildDefaultImage(ctx, connect.NewRequest(&hutchv1.BuildDefaultImageRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	return imageResult(stream, "build the default image", progress)
}

// imageResult relays an image stream's progress and returns its image.
func imageResult(stream *connect.ServerStreamForClient[hutchv1.ImageEvent], op string, progress io.Writer) (*hutchv1.Image, error) {
	defer stream.Close()
	for stream.Receive() {
		switch ev := stream.Msg().Event.(type) {
		case *hutchv1.ImageEvent_Progress:
			if progress != nil {
				if _, err := fmt.Fprintln(progress, ev.Progress); err != nil {
					return nil, fmt.Errorf("%s: write progress: %w", op, err)
				}
			}
		case *hutchv1.ImageEvent_Image:
			return ev.Image, nil
		}
	}
	if err := stream.Err(); err != nil {
		return nil, wrap(err)
	}
	return nil, fmt.Errorf("%s: stream ended without the image: %w", op, ErrUnavailable)
}
