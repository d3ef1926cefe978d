"""File endpoints: mounted paths, NFS through libnfs, SFTP and S3-compatible stores."""
