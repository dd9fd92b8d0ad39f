package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	gname "github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/internal/image"
)

// defaultCache is where `hutch serve` keeps images unless told otherwise.
const defaultCache = "/var/cache/hutch"

// The image commands ask the daemon, which owns the image store. With
// --cache they work on the store in that directory directly, as root on its
// machine, without a daemon: `make image` builds the default image that way
// before any daemon exists. Import always works directly, on the machine
// the files are on.
func newImageCmd(e *env) *cobra.Command {
	var cache string
	cmd := group(&cobra.Command{Use: "image", Short: "Build, import, pull and list sandbox images"})
	cmd.PersistentFlags().StringVar(&cache, "cache", "", "work on the image store in this directory directly, without a daemon (as root on its machine; e.g. "+defaultCache+")")
	open := func(dir string) (*image.Store, error) {
		return image.Open(dir, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	cmd.AddCommand(newImageBuildCmd(e, &cache, open), newImageLsCmd(e, &cache, open), newImagePullCmd(e, &cache, open), newImageImportCmd(e, &cache, open))
	return cmd
}

type openStore func(dir string) (*image.Store, error)

func newImageBuildCmd(e *env, cache *string, open openStore) *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build the default image from its recipe (cached; rebuilt only when the recipe changes); progress on stderr",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *cache == "" {
				img, err := e.client().BuildDefaultImage(cmd.Context(), e.stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %s (%s)\n", img.Name, img.Digest, bytesHuman(img.Size))
				return nil
			}
			s, err := open(*cache)
			if err != nil {
				return err
			}
			img, err := s.EnsureDefault(cmd.Context(), e.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s (%s)\n", img.Name, img.Digest, bytesHuman(img.Size))
			return nil
		},
	}
}

func newImageLsCmd(e *env, cache *string, open openStore) *cobra.Command {
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List images",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *cache != "" {
				return lsLocal(e, open, *cache, asJSON)
			}
			imgs, err := e.client().Images(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, imgs)
			}
			rows := make([]imageRow, 0, len(imgs))
			for _, i := range imgs {
				var created time.Time
				if i.CreatedAt != nil {
					created = i.CreatedAt.AsTime()
				}
				rows = append(rows, imageRow{i.Name, i.Digest, len(i.Layers), i.Size, created, i.Source})
			}
			return printImages(e.stdout, rows)
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return ls
}

// lsLocal lists the store in dir, printing JSON of its records as before
// the daemon served images.
func lsLocal(e *env, open openStore, dir string, asJSON bool) error {
	s, err := open(dir)
	if err != nil {
		return err
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(imgs)
	}
	rows := make([]imageRow, 0, len(imgs))
	for _, i := range imgs {
		rows = append(rows, imageRow{i.Name, i.Digest, len(i.Layers), i.Size, i.Created, i.Source})
	}
	return printImages(e.stdout, rows)
}

type imageRow struct {
	name, digest string
	layers       int
	size         int64
	created      time.Time
	source       string
}

func printImages(w io.Writer, rows []imageRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tDIGEST\tLAYERS\tSIZE\tCREATED\tSOURCE")
	for _, i := range rows {
		fmt.Fprintf(tw, "%s\t%.19s\t%d\t%s\t%s\t%s\n", i.name, i.digest, i.layers, bytesHuman(i.size), ago(i.created), i.source)
	}
	return tw.Flush()
}

func newImagePullCmd(e *env, cache *string, open openStore) *cobra.Command {
	var pullName string
	pull := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an OCI image from a registry; progress on stderr",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, name := a[0], pullName
			if name == "" {
				r, err := gname.ParseReference(ref)
				if err != nil {
					return usageError{err}
				}
				name = imageNameOf(r)
			}
			if *cache == "" {
				img, err := e.client().PullImage(cmd.Context(), ref, name, e.stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %s\n", img.Name, img.Digest)
				return nil
			}
			s, err := open(*cache)
			if err != nil {
				return err
			}
			img, err := s.Pull(cmd.Context(), name, ref, e.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s\n", img.Name, img.Digest)
			return nil
		},
	}
	pull.Flags().StringVar(&pullName, "name", "", "name to store the image under (default: from the reference)")
	return pull
}

func newImageImportCmd(e *env, cache *string, open openStore) *cobra.Command {
	var importName string
	imp := &cobra.Command{
		Use:   "import PATH --name NAME",
		Short: "Import an OCI image layout, OCI archive or docker-save tarball into the store on this machine (--cache, default " + defaultCache + ")",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if importName == "" {
				return usageError{fmt.Errorf("import: --name is required")}
			}
			dir := *cache
			if dir == "" {
				dir = defaultCache
			}
			s, err := open(dir)
			if err != nil {
				return err
			}
			img, err := s.Import(cmd.Context(), importName, a[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s\n", img.Name, img.Digest)
			return nil
		},
	}
	imp.Flags().StringVar(&importName, "name", "", "name to store the image under")
	return imp
}

// imageNameOf turns a reference like localhost:5000/team/app:v1 into app-v1.
func imageNameOf(r gname.Reference) string {
	repo := r.Context().RepositoryStr()
	for i := len(repo) - 1; i >= 0; i-- {
		if repo[i] == '/' {
			repo = repo[i+1:]
			break
		}
	}
	if t, ok := r.(gname.Tag); ok && t.TagStr() != "latest" {
		return repo + "-" + t.TagStr()
	}
	return repo
}
