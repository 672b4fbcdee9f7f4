package wasm

import (
	"io/fs"
	"os"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// artifactFS is the guest's filesystem: the artifact directory, read-only at "/".
//
// It goes through an os.Root, which refuses "..", absolute symbolic links and symbolic links
// that climb out of the directory; wazero's WithReadOnlyDirMount documents that it does not
// stop such escapes.
func artifactFS(root *os.Root) wazero.FSConfig {
	fsys := readOnlyFS{&sysfs.ReadFS{FS: &sysfs.AdaptFS{FS: root.FS()}}}
	return wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(fsys, "/")
}

// readOnlyFS refuses opening for writing with EROFS ("read-only file system"), which says
// more to a guest's author than the ENOSYS that sysfs.ReadFS answers.
type readOnlyFS struct {
	experimentalsys.FS
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT |
	experimentalsys.O_TRUNC | experimentalsys.O_APPEND | experimentalsys.O_EXCL

func (f readOnlyFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&writeFlags != 0 {
		if flag&experimentalsys.O_DIRECTORY != 0 {
			return nil, experimentalsys.EISDIR
		}
		return nil, experimentalsys.EROFS
	}
	return f.FS.OpenFile(path, flag, perm)
}
