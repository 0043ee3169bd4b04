package impl

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// ListLinodeInstances returns a page of the caller's Linodes, by id.
func (s *Server) ListLinodeInstances(ctx context.Context,
	req gen.ListLinodeInstancesRequestObject) (gen.ListLinodeInstancesResponseObject, error) {
	q := listQuery(req.Params.Page, req.Params.PageSize, req.Params.XFilter)
	page, err := s.store.ListLinodes(ctx, principal(ctx), q)
	if err != nil {
		return nil, err
	}
	out := gen.ListLinodeInstances200JSONResponse{
		Data: make([]gen.Linode, len(page.Linodes)), Page: page.Page, Pages: page.Pages, Results: page.Results,
	}
	for i := range page.Linodes {
		out.Data[i] = linodeOut(&page.Linodes[i])
	}
	return out, nil
}

// GetLinodeInstance returns one of the caller's Linodes.
func (s *Server) GetLinodeInstance(ctx context.Context,
	req gen.GetLinodeInstanceRequestObject) (gen.GetLinodeInstanceResponseObject, error) {
	l, err := s.store.GetLinode(ctx, principal(ctx), int64(req.LinodeId))
	if err != nil {
		return nil, err
	}
	return gen.GetLinodeInstance200JSONResponse(linodeOut(l)), nil
}

// CreateLinodeInstance creates a Linode and starts provisioning it.
func (s *Server) CreateLinodeInstance(ctx context.Context,
	req gen.CreateLinodeInstanceRequestObject) (gen.CreateLinodeInstanceResponseObject, error) {
	b := req.Body
	if !regions[b.Region] {
		return nil, db.Errorf(db.Invalid, "region", "region is not valid")
	}
	p, ok := plans[b.Type]
	if !ok {
		return nil, db.Errorf(db.Invalid, "type", "type is not valid")
	}
	in := db.NewLinode{
		Region: b.Region, Type: b.Type, Group: deref(b.Group), Tags: derefList(b.Tags),
		BackupsEnabled: deref(b.BackupsEnabled), PrivateIP: deref(b.PrivateIp),
		HasUserData: b.Metadata != nil && b.Metadata.UserData != nil,
		Alerts: db.Alerts{
			CPU: 90 * p.vcpus, IO: 10000, NetworkIn: 10, NetworkOut: 10, TransferQuota: 80,
		},
	}
	if b.Label != nil {
		if err := checkLabel(*b.Label); err != nil {
			return nil, err
		}
		in.Label = *b.Label
	}
	if b.Metadata != nil && b.Metadata.UserData != nil {
		if _, err := base64.StdEncoding.DecodeString(*b.Metadata.UserData); err != nil {
			return nil, db.Errorf(db.Invalid, "metadata.user_data", "metadata.user_data must be Base64")
		}
	}
	if b.BackupId != nil {
		if b.Image != nil {
			return nil, db.Errorf(db.Invalid, "backup_id", "Provide an image or a backup_id, not both.")
		}
		in.FromBackup = &db.FromBackup{ID: int64(*b.BackupId),
			Fits: func(bk *db.Backup, l *db.Linode) error { return fitsPlan(bk, l, "type") }}
	}
	if b.Image != nil {
		label, err := s.checkImage(ctx, *b.Image, b.RootPass, b.AuthorizedKeys, b.AuthorizedUsers)
		if err != nil {
			return nil, err
		}
		in.Image, in.ImageLabel = b.Image, label
	} else if b.RootPass != nil || b.AuthorizedKeys != nil || b.AuthorizedUsers != nil {
		return nil, db.Errorf(db.Invalid, "image",
			"image is required to set root_pass, authorized_keys or authorized_users")
	}
	// A Linode built from an image or a backup boots unless told not to;
	// one without either has nothing to boot (nor one from a backup of
	// no disks, which the store knows).
	deployed := b.Image != nil || b.BackupId != nil
	in.Booted = deployed
	if b.Booted != nil {
		in.Booted = *b.Booted && deployed
	}

	l, err := s.store.CreateLinode(ctx, principal(ctx), in)
	if err != nil {
		return nil, err
	}
	s.jobs.Wake()
	return gen.CreateLinodeInstance200JSONResponse(linodeOut(l)), nil
}

// UpdateLinodeInstance changes a Linode's label, tags, group, watchdog or alerts.
func (s *Server) UpdateLinodeInstance(ctx context.Context,
	req gen.UpdateLinodeInstanceRequestObject) (gen.UpdateLinodeInstanceResponseObject, error) {
	b := req.Body
	if b.Label != nil {
		if err := checkLabel(*b.Label); err != nil {
			return nil, err
		}
	}
	in := db.LinodeUpdate{Label: b.Label, Tags: b.Tags, Group: b.Group, Watchdog: b.WatchdogEnabled}
	// linodego sends back the whole backups object it read; only the
	// schedule is settable here, enabling goes through /backups/enable.
	// NOTE: maintenance_policy is accepted for the same reason and ignored.
	if b.Backups != nil && b.Backups.Schedule != nil {
		in.BackupDay = (*string)(b.Backups.Schedule.Day)
		in.BackupWindow = (*string)(b.Backups.Schedule.Window)
	}
	if a := b.Alerts; a != nil {
		in.Alerts = func(cur *db.Alerts) {
			setIf(&cur.CPU, a.Cpu)
			setIf(&cur.IO, a.Io)
			setIf(&cur.NetworkIn, a.NetworkIn)
			setIf(&cur.NetworkOut, a.NetworkOut)
			setIf(&cur.TransferQuota, a.TransferQuota)
		}
	}
	l, err := s.store.UpdateLinode(ctx, principal(ctx), int64(req.LinodeId), in)
	if err != nil {
		return nil, err
	}
	return gen.UpdateLinodeInstance200JSONResponse(linodeOut(l)), nil
}

// DeleteLinodeInstance deletes a Linode: it disappears at once and its
// linode_delete event finishes when the hypervisor has removed it.
func (s *Server) DeleteLinodeInstance(ctx context.Context,
	req gen.DeleteLinodeInstanceRequestObject) (gen.DeleteLinodeInstanceResponseObject, error) {
	if _, err := s.act(ctx, req.LinodeId, db.Action{Name: "linode_delete"}); err != nil {
		return nil, err
	}
	return gen.DeleteLinodeInstance200JSONResponse{}, nil
}

// BootLinodeInstance boots a Linode. A busy Linode accepts it: the boot is
// scheduled and runs when the current job ends.
func (s *Server) BootLinodeInstance(ctx context.Context,
	req gen.BootLinodeInstanceRequestObject) (gen.BootLinodeInstanceResponseObject, error) {
	var config nullable.Nullable[int]
	if req.Body != nil {
		config = req.Body.ConfigId
	}
	if err := s.boot(ctx, req.LinodeId, "linode_boot", config); err != nil {
		return nil, err
	}
	return gen.BootLinodeInstance200JSONResponse{}, nil
}

// RebootLinodeInstance reboots a Linode.
func (s *Server) RebootLinodeInstance(ctx context.Context,
	req gen.RebootLinodeInstanceRequestObject) (gen.RebootLinodeInstanceResponseObject, error) {
	var config nullable.Nullable[int]
	if req.Body != nil {
		config = req.Body.ConfigId
	}
	if err := s.boot(ctx, req.LinodeId, "linode_reboot", config); err != nil {
		return nil, err
	}
	return gen.RebootLinodeInstance200JSONResponse{}, nil
}

// boot starts a boot or a reboot with the configuration profile asked for.
func (s *Server) boot(ctx context.Context, id int, action string, config nullable.Nullable[int]) error {
	sec, err := bootConfig(id, config)
	if err != nil {
		return err
	}
	_, err = s.act(ctx, id, db.Action{Name: action, Secondary: sec})
	return err
}

// ShutdownLinodeInstance shuts a Linode down.
func (s *Server) ShutdownLinodeInstance(ctx context.Context,
	req gen.ShutdownLinodeInstanceRequestObject) (gen.ShutdownLinodeInstanceResponseObject, error) {
	if _, err := s.act(ctx, req.LinodeId, db.Action{Name: "linode_shutdown"}); err != nil {
		return nil, err
	}
	return gen.ShutdownLinodeInstance200JSONResponse{}, nil
}

// ResetLinodePassword resets the root password of a Linode that is shut
// down. The password is checked and passed to the hypervisor, never stored.
func (s *Server) ResetLinodePassword(ctx context.Context,
	req gen.ResetLinodePasswordRequestObject) (gen.ResetLinodePasswordResponseObject, error) {
	if req.Body == nil || req.Body.RootPass == nil {
		return nil, db.Errorf(db.Invalid, "root_pass", "root_pass is required")
	}
	if err := checkPassword(*req.Body.RootPass); err != nil {
		return nil, err
	}
	a := db.Action{Name: "password_reset", RequireOffline: true}
	if _, err := s.act(ctx, req.LinodeId, a); err != nil {
		return nil, err
	}
	return gen.ResetLinodePassword200JSONResponse{}, nil
}

// RebuildLinodeInstance rebuilds a Linode from an image, wiping its disks.
func (s *Server) RebuildLinodeInstance(ctx context.Context,
	req gen.RebuildLinodeInstanceRequestObject) (gen.RebuildLinodeInstanceResponseObject, error) {
	b := req.Body
	label, err := s.checkImage(ctx, b.Image, b.RootPass, b.AuthorizedKeys, b.AuthorizedUsers)
	if err != nil {
		return nil, err
	}
	if _, ok := plans[deref(b.Type)]; b.Type != nil && !ok {
		return nil, db.Errorf(db.Invalid, "type", "type is not valid")
	}
	booted := b.Booted == nil || *b.Booted
	a := db.Action{
		Name:      "linode_rebuild",
		Image:     &b.Image,
		Type:      b.Type,
		Params:    fmt.Sprintf(`{"booted":%t}`, booted),
		Secondary: &db.Entity{ID: b.Image, Label: label, Type: "image", URL: "/v4/images/" + b.Image},
	}
	l, err := s.act(ctx, req.LinodeId, a)
	if err != nil {
		return nil, err
	}
	return gen.RebuildLinodeInstance200JSONResponse(linodeOut(l)), nil
}

// act starts an action on one of the caller's Linodes and wakes the runner.
func (s *Server) act(ctx context.Context, id int, a db.Action) (*db.Linode, error) {
	if a.Params == "" {
		a.Params = "{}"
	}
	l, _, err := s.store.Act(ctx, principal(ctx), int64(id), a)
	if err != nil {
		return nil, err
	}
	s.jobs.Wake()
	return l, nil
}

// bootConfig is the configuration profile a boot or reboot uses: every
// Linode has one, whose id is the Linode's.
func bootConfig(linodeID int, requested nullable.Nullable[int]) (*db.Entity, error) {
	if requested.IsSpecified() && !requested.IsNull() && requested.MustGet() != linodeID {
		return nil, db.Errorf(db.Invalid, "config_id", "config_id is not valid")
	}
	return &db.Entity{
		ID: int64(linodeID), Label: "Boot Config", Type: "linode_config",
		URL: fmt.Sprintf("/v4/linode/instances/%d/configs/%d", linodeID, linodeID),
	}, nil
}

// checkImage checks an image and the credentials that go with it, and
// returns the image's label. Every key must be an SSH public key and every
// user one of the account's, so that the Linode has a working login.
func (s *Server) checkImage(ctx context.Context, image string, rootPass *string,
	keys, users *[]string) (string, error) {
	label, ok := images[image]
	if !ok {
		return "", db.Errorf(db.Invalid, "image", "image is not valid")
	}
	if rootPass == nil && (keys == nil || len(*keys) == 0) && (users == nil || len(*users) == 0) {
		return "", &db.Error{Code: db.Invalid,
			Reason: "Must provide valid root_pass, authorized_keys, or authorized_users"}
	}
	if rootPass != nil {
		if err := checkPassword(*rootPass); err != nil {
			return "", err
		}
	}
	for _, k := range derefList(keys) {
		if !sshKeyPattern.MatchString(k) {
			return "", db.Errorf(db.Invalid, "authorized_keys", "authorized_keys must be SSH public keys")
		}
	}
	missing, err := s.store.MissingUsers(ctx, principal(ctx), derefList(users))
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", db.Errorf(db.Invalid, "authorized_users", "authorized_users must be users of this account")
	}
	return label, nil
}

var sshKeyPattern = regexp.MustCompile(
	`^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9-]+@openssh\.com) ` +
		`[A-Za-z0-9+/]+={0,3}( [^\x00-\x1f]*)?$`)

// checkPassword applies the strength rule to a root password: 7 to 128
// characters with at least three kinds of lower case, upper case, digits
// and symbols.
func checkPassword(pw string) error {
	var lower, upper, digit, other int
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	n := len([]rune(pw))
	if n < 7 || n > 128 || lower+upper+digit+other < 3 {
		return db.Errorf(db.Invalid, "root_pass", "Password does not meet strength requirement")
	}
	return nil
}

var labelPattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$`)

// checkLabel applies the Linode label rules.
func checkLabel(label string) error {
	if len(label) < 3 || len(label) > 64 || !labelPattern.MatchString(label) {
		return db.Errorf(db.Invalid, "label", "Label must be 3 to 64 letters, digits, dots, dashes"+
			" and underscores, and start and end with a letter or digit.")
	}
	if strings.Contains(label, "--") || strings.Contains(label, "__") || strings.Contains(label, "..") {
		return db.Errorf(db.Invalid, "label",
			"Label must not contain two dashes, underscores or periods in a row.")
	}
	return nil
}

// linodeOut is the wire form of a stored Linode.
func linodeOut(l *db.Linode) gen.Linode {
	p := plans[l.Type]
	a := l.Alerts()
	out := gen.Linode{
		Id: int(l.ID), Label: l.Label, Region: l.Region, Type: l.Type, Image: nullableOf(l.Image),
		Status: gen.LinodeStatus(l.Status), Ipv4: l.IPv4(), Ipv6: nullableOf(l.IPv6()),
		Hypervisor: "kvm", Group: l.Group, Tags: l.Tags(), WatchdogEnabled: l.Watchdog,
		HostUuid: l.HostUUID, HasUserData: l.HasUserData, SiteType: "core",
		Created: db.FormatTime(l.Created), Updated: db.FormatTime(l.Updated),
		Specs: gen.LinodeSpecs{Disk: p.disk, Memory: p.memory, Vcpus: p.vcpus, Gpus: p.gpus, Transfer: p.transfer},
		Alerts: gen.LinodeAlerts{Cpu: a.CPU, Io: a.IO, NetworkIn: a.NetworkIn, NetworkOut: a.NetworkOut,
			TransferQuota: a.TransferQuota},
		Backups: gen.LinodeBackups{
			Enabled: l.BackupsEnabled, Available: l.BackupsAvailable,
			LastSuccessful: nullable.NewNullNullable[gen.Datetime](),
			Schedule: gen.LinodeBackupSchedule{
				Day:    nullableOf((*gen.LinodeBackupScheduleDay)(l.BackupDay)),
				Window: nullableOf((*gen.LinodeBackupScheduleWindow)(l.BackupWindow)),
			},
		},
		LkeClusterId:   nullable.NewNullNullable[int](),
		PlacementGroup: nullable.NewNullNullable[gen.LinodePlacementGroup](),
		Capabilities:   []string{},
	}
	if l.BackupsLastSuccessful != nil {
		last := db.FormatTime(*l.BackupsLastSuccessful)
		out.Backups.LastSuccessful = nullable.NewNullableWithValue(last)
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefList(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

func setIf(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}
