/** The stack's S3 bucket, created in MinIO by `up`. */
import { DEFAULT_BUCKET, DEFAULT_REGION, HOST } from './constants';
import { StackError } from './types';

export async function createBucket(vars: Record<string, string>, port: number): Promise<void> {
  // Loaded here so that `status` and `down` do not pay for (or warn about) the AWS SDK.
  const { CreateBucketCommand, PutBucketLifecycleConfigurationCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: `http://${HOST}:${port}`,
    region: vars.AWS_REGION || DEFAULT_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: vars.AWS_ACCESS_KEY_ID, secretAccessKey: vars.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: vars.MERGEFLOW_BUCKET || DEFAULT_BUCKET }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou') {
      throw new StackError(`cannot create bucket ${vars.MERGEFLOW_BUCKET}: ${name}: ${(err as Error).message}`);
    }
  }
  try {
    // uploads a killed writer never finished are dropped by the server after a day, where it supports the rule
    // (MinIO does; SeaweedFS 4.48 refuses it, and mergeflow then relies on aborting them itself)
    await client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: vars.MERGEFLOW_BUCKET || DEFAULT_BUCKET,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'mergeflow-abort-incomplete-uploads',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            },
          ],
        },
      }),
    );
  } catch {
    // not supported by this server: nothing to do
  } finally {
    client.destroy();
  }
}
