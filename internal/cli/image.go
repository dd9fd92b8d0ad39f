package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/internal/image"
)

// The image commands work on the local image store directly, as root on the
// daemon's machine; the daemon picks new images up on the next create.
func newImageCmd(e *env) *cobra.Command {
	var cache string
	cmd := group(&cobra.Command{Use: "image", Short: "Build, import, pull and list sandbox images"})
	cmd.PersistentFlags().StringVar(&cache, "cache", "/var/cache/hutch", "image store directory")
	open := func() (*image.Store, error) {
		return image.Open(cache, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}

	build := &cobra.Command{
		Use:   "build",
		Short: "Build the default image from its recipe (cached; rebuilt only when the recipe changes)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
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

	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List images",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
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
			tw := table(e.stdout)
			fmt.Fprintln(tw, "NAME\tDIGEST\tLAYERS\tSIZE\tCREATED\tSOURCE")
			for _, i := range imgs {
				d := i.Digest
				if len(d) > 19 {
					d = d[:19]
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", i.Name, d, len(i.Layers), bytesHuman(i.Size), ago(i.Created), i.Source)
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var pullName string
	pull := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an OCI image from a registry",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			ref := a[0]
			if pullName == "" {
				r, err := name.ParseReference(ref)
				if err != nil {
					return usageError{err}
				}
				pullName = imageNameOf(r)
			}
			img, err := s.Pull(cmd.Context(), pullName, ref)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s\n", img.Name, img.Digest)
			return nil
		},
	}
	pull.Flags().StringVar(&pullName, "name", "", "name to store the image under (default: from the reference)")

	var importName string
	imp := &cobra.Command{
		Use:   "import PATH --name NAME",
		Short: "Import an OCI image layout, OCI archive or docker-save tarball",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if importName == "" {
				return usageError{fmt.Errorf("import: --name is required")}
			}
			s, err := open()
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

	cmd.AddCommand(build, ls, pull, imp)
	return cmd
}

// imageNameOf turns a reference like localhost:5000/team/app:v1 into app-v1.
func imageNameOf(r name.Reference) string {
	repo := r.Context().RepositoryStr()
	for i := len(repo) - 1; i >= 0; i-- {
		if repo[i] == '/' {
			repo = repo[i+1:]
			break
		}
	}
	if t, ok := r.(name.Tag); ok && t.TagStr() != "latest" {
		return repo + "-" + t.TagStr()
	}
	return repo
}
