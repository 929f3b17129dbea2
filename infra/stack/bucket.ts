/** The stack's S3 bucket, created in MinIO by `up`. */
import { DEFAULT_BUCKET, DEFAULT_REGION, HOST } from './constants';
import { StackError } from './types';

export async function createBucket(vars: Record<string, string>, port: number): Promise<void> {
  // Loaded here so that `status` and `down` do not pay for (or warn about) the AWS SDK.
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
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
  } finally {
    client.destroy();
  }
}
