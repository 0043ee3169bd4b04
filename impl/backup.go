package impl

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// GetLinodeBackups returns a Linode's automatic backups and its snapshot.
func (s *Server) GetLinodeBackups(ctx context.Context,
	req gen.GetLinodeBackupsRequestObject) (gen.GetLinodeBackupsResponseObject, error) {
	list, err := s.store.ListBackups(ctx, principal(ctx), int64(req.LinodeId))
	if err != nil {
		return nil, err
	}
	out := gen.LinodeBackupList{
		Automatic: make([]gen.Backup, len(list.Automatic)),
		Snapshot: gen.LinodeSnapshots{
			Current:    nullable.NewNullNullable[gen.Backup](),
			InProgress: nullable.NewNullNullable[gen.Backup](),
		},
	}
	for i := range list.Automatic {
		out.Automatic[i] = backupOut(&list.Automatic[i])
	}
	if list.Current != nil {
		out.Snapshot.Current = nullable.NewNullableWithValue(backupOut(list.Current))
	}
	if list.InProgress != nil {
		out.Snapshot.InProgress = nullable.NewNullableWithValue(backupOut(list.InProgress))
	}
	return gen.GetLinodeBackups200JSONResponse(out), nil
}

// GetLinodeBackup returns one backup of a Linode.
func (s *Server) GetLinodeBackup(ctx context.Context,
	req gen.GetLinodeBackupRequestObject) (gen.GetLinodeBackupResponseObject, error) {
	b, err := s.store.GetBackup(ctx, principal(ctx), int64(req.LinodeId), int64(req.BackupId))
	if err != nil {
		return nil, err
	}
	return gen.GetLinodeBackup200JSONResponse(backupOut(b)), nil
}

// CreateLinodeSnapshot starts a manual snapshot of a Linode.
func (s *Server) CreateLinodeSnapshot(ctx context.Context,
	req gen.CreateLinodeSnapshotRequestObject) (gen.CreateLinodeSnapshotResponseObject, error) {
	b, err := s.store.TakeSnapshot(ctx, principal(ctx), int64(req.LinodeId), req.Body.Label)
	if err != nil {
		return nil, err
	}
	s.jobs.Wake()
	return gen.CreateLinodeSnapshot200JSONResponse(backupOut(b)), nil
}

// EnableLinodeBackups enrols a Linode in the backup service.
func (s *Server) EnableLinodeBackups(ctx context.Context,
	req gen.EnableLinodeBackupsRequestObject) (gen.EnableLinodeBackupsResponseObject, error) {
	if err := s.store.EnableBackups(ctx, principal(ctx), int64(req.LinodeId)); err != nil {
		return nil, err
	}
	return gen.EnableLinodeBackups200JSONResponse{}, nil
}

// CancelLinodeBackups takes a Linode out of the backup service, deleting
// its backups.
func (s *Server) CancelLinodeBackups(ctx context.Context,
	req gen.CancelLinodeBackupsRequestObject) (gen.CancelLinodeBackupsResponseObject, error) {
	if err := s.store.CancelBackups(ctx, principal(ctx), int64(req.LinodeId)); err != nil {
		return nil, err
	}
	return gen.CancelLinodeBackups200JSONResponse{}, nil
}

// RestoreLinodeBackup starts restoring a backup onto a Linode.
func (s *Server) RestoreLinodeBackup(ctx context.Context,
	req gen.RestoreLinodeBackupRequestObject) (gen.RestoreLinodeBackupResponseObject, error) {
	r := db.Restore{TargetID: int64(req.Body.LinodeId), Overwrite: deref(req.Body.Overwrite)}
	r.Fits = func(b *db.Backup, target *db.Linode) error { return fits(b, target, r.Overwrite) }
	err := s.store.RestoreBackup(ctx, principal(ctx), int64(req.LinodeId), int64(req.BackupId), r)
	if err != nil {
		return nil, err
	}
	s.jobs.Wake()
	return gen.RestoreLinodeBackup200JSONResponse{}, nil
}

// fits says whether a backup's disks fit on a target Linode. A Linode built
// from an image uses all of its plan's disk, so without overwrite only a
// Linode with no disks has room; with it the target's plan must be as big.
func fits(b *db.Backup, target *db.Linode, overwrite bool) error {
	if !overwrite && target.Image != nil {
		return db.Errorf(db.Invalid, "overwrite",
			"The target Linode has no room for this backup; restore with overwrite.")
	}
	return fitsPlan(b, target, "linode_id")
}

// fitsPlan says whether a backup's disks fit in a Linode's plan; field
// names what to change when they do not.
func fitsPlan(b *db.Backup, target *db.Linode, field string) error {
	need := 0
	for _, d := range backupDisks(b) {
		need += d.Size
	}
	if need > plans[target.Type].disk {
		return db.Errorf(db.Invalid, field, "The target Linode's plan is too small for this backup.")
	}
	return nil
}

// swapMB is the size of the swap disk of every Linode built from an image.
const swapMB = 512

// backupDisks are the disks a backup holds: those a Linode of its plan,
// built from its image, has; none without an image.
func backupDisks(b *db.Backup) []gen.BackupDisk {
	if b.Image == nil {
		return []gen.BackupDisk{}
	}
	label, ok := images[*b.Image]
	if !ok {
		label = *b.Image
	}
	return []gen.BackupDisk{
		{Label: label + " Disk", Size: plans[b.LinodeType].disk - swapMB, Filesystem: gen.Ext4},
		{Label: "512 MB Swap Image", Size: swapMB, Filesystem: gen.Swap},
	}
}

// backupOut is the wire form of a backup. Every Linode has one configuration
// profile, which its backups hold.
func backupOut(b *db.Backup) gen.Backup {
	out := gen.Backup{
		Id: int(b.ID), Label: nullableOf(b.Label), Type: gen.BackupType(b.Type),
		Status: gen.BackupStatus(b.Status), Available: b.Available(), Region: b.Region,
		Created: db.FormatTime(b.Created), Updated: db.FormatTime(b.Updated),
		Finished: nullable.NewNullNullable[gen.Datetime](),
		Configs:  []string{"Boot Config"}, Disks: backupDisks(b),
	}
	if b.Finished != nil {
		out.Finished = nullable.NewNullableWithValue(db.FormatTime(*b.Finished))
	}
	return out
}
